"""The recall playground: a recall run as the signed-in staff user, factor by factor.

The project list is the user's own (`Project.objects.restrict(user, "view")`, the reader role
the API's recall needs), and the recall is memory's operation itself, validated by the API's
serializer, so the playground answers exactly what an agent with a reader key would get.
"""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from engramia_site.errors import DomainError, InvalidInput
from memory.operations import recall
from memory.services.rank_explain import explain_pattern_rank
from tenants.models import Project


class PlaygroundForm(forms.Form):
    """A recall query: the project, the task and recall's options."""

    project = forms.ModelChoiceField(queryset=Project.objects.none())
    task = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000)
    eval_weighted = forms.BooleanField(required=False, initial=True, label="Eval weighting")
    recency_weight = forms.FloatField(
        min_value=0, max_value=1, required=False, initial=0, label="Recency weight"
    )
    min_similarity = forms.FloatField(
        min_value=0, max_value=1, required=False, label="Minimum similarity"
    )
    limit = forms.IntegerField(min_value=1, max_value=50, required=False, initial=10)
    include_documents = forms.BooleanField(required=False, label="Documents")
    why_not = forms.IntegerField(
        min_value=1, required=False, label="Why not this one? (pattern id)"
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Left blank: recall's own defaults.
        if cleaned.get("limit") is None:
            cleaned["limit"] = 10
        if cleaned.get("recency_weight") is None:
            cleaned["recency_weight"] = 0.0
        return cleaned

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["project"]
        field.queryset = Project.objects.restrict(user, "view").select_related("tenant")  # type: ignore[attr-defined]
        field.empty_label = None  # type: ignore[attr-defined]  # the first project is chosen
        for name, widget_field in self.fields.items():
            if name in ("recency_weight", "min_similarity"):
                widget_field.widget.attrs["step"] = "0.05"


def _recall_input(data: dict[str, Any]) -> dict[str, Any]:
    """The API's recall body for the form's values."""
    body = {
        "task": data["task"],
        "limit": data["limit"],
        "eval_weighted": data["eval_weighted"],
        "recency_weight": data["recency_weight"],
        "include_documents": data["include_documents"],
        "explain": True,
    }
    if data.get("min_similarity") is not None:
        body["min_similarity"] = data["min_similarity"]
    return body


def run_playground(form: PlaygroundForm) -> dict[str, Any]:
    """Recall (and explain the pattern asked about) for a valid form; errors land on the form."""
    data = form.cleaned_data
    project = data["project"]
    started = time.perf_counter()
    try:
        result = recall(project=project, data=_recall_input(data))
    except InvalidInput as exc:
        form.add_error(None, str(exc))
        return {}
    except DomainError as exc:
        form.add_error(None, f"Recall failed: {exc}")
        return {}
    elapsed_ms = (time.perf_counter() - started) * 1000
    context: dict[str, Any] = {"result": result, "elapsed_ms": elapsed_ms, "project": project}
    if data.get("why_not"):
        try:
            context["why_not"] = explain_pattern_rank(
                project=project,
                task=data["task"],
                pattern_id=data["why_not"],
                limit=data["limit"],
                eval_weighted=data["eval_weighted"],
                recency_weight=data["recency_weight"],
                min_similarity=data.get("min_similarity"),
            )
        except DomainError as exc:
            form.add_error("why_not", str(exc))
    return context


def playground_view(request: HttpRequest) -> HttpResponse:
    """GET without a task shows the form; with one, runs the recall as the signed-in user."""
    from django.contrib import admin

    submitted = "task" in request.GET
    form = PlaygroundForm(request.GET if submitted else None, user=request.user)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Recall playground",
        "form": form,
    }
    if submitted and form.is_valid():
        context.update(run_playground(form))
    return TemplateResponse(request, "console/playground.html", context)
