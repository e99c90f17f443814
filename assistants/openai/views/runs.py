"""/openai/v1/threads/<t>/runs (and threads/runs): create (queued, or streamed), retrieve,
list, modify, cancel, submit tool outputs; and each run's steps."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from assistants.models import Run, RunStep, Thread
from assistants.openai.base import OpenAIView
from assistants.openai.inputs import (
    IncludeInput,
    ListInput,
    MetadataInput,
    RunInput,
    ThreadAndRunInput,
    ToolOutputsInput,
)
from assistants.openai.services.lookup import find, find_run, find_thread
from assistants.openai.services.objects import update_metadata
from assistants.openai.services.runs import (
    cancel_run,
    create_thread_and_run,
    expire_if_due,
    start_run,
    submit_tool_outputs,
)
from assistants.openai.shapes import run_shape, step_shape, thread_shape
from assistants.openai.stream import stream_response
from tenants.choices import Role

# How long the SDK's poll helpers wait before asking again about an active run.
POLL_AFTER_MS = 200
RESULTS_INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


def queued(run: Run, thread_id: str | None = None, *, fresh: bool = True) -> dict[str, Any]:
    """A streamed run as its first events show it: queued (it is in progress by then)."""
    shape = run_shape(run, thread_id)
    shape["status"] = "queued"
    if fresh:
        shape["started_at"] = None
    return shape


def run_response(run: Run) -> Response:
    """A run, with the poll hint while it is still being executed."""
    response = Response(run_shape(run))
    if run.status in ("queued", "in_progress", "cancelling"):
        response["openai-poll-after-ms"] = str(POLL_AFTER_MS)
    return response


def _include(request: Request, view: OpenAIView) -> bool:
    """Whether the client asked for file_search results (include[]=...content)."""
    values = request.query_params.getlist("include[]") or request.query_params.getlist("include")
    included = view.validated(IncludeInput, {"include": values}).get("include") or []
    return RESULTS_INCLUDE in included


class RunListView(OpenAIView):
    """GET: a thread's runs; POST: start one (queued for a job, or streamed with stream: true)."""

    def get(self, request: Request, thread_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        runs = Run.objects.filter(thread=thread).select_related("thread")
        return self.cursor_list(request, runs, run_shape)

    def post(self, request: Request, thread_id: str) -> Any:
        values = self.validated(RunInput, request.data)
        _include(request, self)
        stream = bool(values.get("stream"))
        run = start_run(
            project=self.project,
            thread_id=thread_id,
            values=values,
            stream=stream,
            actor=request.user,
        )
        if stream:
            shape = queued(run, run.thread.public_id)
            prelude = [("thread.run.created", shape), ("thread.run.queued", shape)]
            return stream_response(run, prelude, request.user)
        return run_response(run)


class ThreadAndRunView(OpenAIView):
    """POST: a new thread and its first run."""

    def post(self, request: Request) -> Any:
        values = self.validated(ThreadAndRunInput, request.data)
        stream = bool(values.get("stream"))
        run = create_thread_and_run(
            project=self.project, values=values, stream=stream, actor=request.user
        )
        if stream:
            shape = queued(run)
            prelude = [
                ("thread.created", thread_shape(run.thread)),
                ("thread.run.created", shape),
                ("thread.run.queued", shape),
            ]
            return stream_response(run, prelude, request.user)
        return run_response(run)


class RunDetailView(OpenAIView):
    """GET: one run (with the poll hint); POST: change its metadata."""

    def _run(self, thread_id: str, run_id: str) -> Run:
        return find_run(self.project, find_thread(self.project, thread_id), run_id)

    def get(self, request: Request, thread_id: str, run_id: str) -> Response:
        return run_response(expire_if_due(self._run(thread_id, run_id)))

    def post(self, request: Request, thread_id: str, run_id: str) -> Response:
        run = self._run(thread_id, run_id)
        values = self.validated(MetadataInput, request.data, partial=True)
        return run_response(
            update_metadata(row=run, metadata=values.get("metadata"), actor=request.user)
        )


class RunCancelView(OpenAIView):
    """POST: cancel a run."""

    def post(self, request: Request, thread_id: str, run_id: str) -> Response:
        run = find_run(self.project, find_thread(self.project, thread_id), run_id)
        return run_response(cancel_run(run=run, actor=request.user))


class SubmitToolOutputsView(OpenAIView):
    """POST: answer a run's pending tool calls (every one), streamed or queued for a job."""

    def post(self, request: Request, thread_id: str, run_id: str) -> Any:
        thread = find_thread(self.project, thread_id)
        run = find_run(self.project, thread, run_id)
        values = self.validated(ToolOutputsInput, request.data)
        stream = bool(values.get("stream"))
        run, step = submit_tool_outputs(
            run=run, outputs=values["tool_outputs"], stream=stream, actor=request.user
        )
        if stream:
            prelude = [
                ("thread.run.step.completed", step_shape(step, run, thread.public_id)),
                ("thread.run.queued", queued(run, thread.public_id, fresh=False)),
            ]
            return stream_response(run, prelude, request.user)
        return run_response(run)


def _step_body(step: RunStep, run: Run, thread: Thread, include: bool) -> dict[str, Any]:
    body = step_shape(step, run, thread.public_id)
    if not include and step.type == "tool_calls":
        calls = []
        for call in (body["step_details"] or {}).get("tool_calls") or []:
            if call.get("type") == "file_search":
                search = {k: v for k, v in call["file_search"].items() if k != "results"}
                call = {**call, "file_search": search}
            calls.append(call)
        body["step_details"] = {**body["step_details"], "tool_calls": calls}
    return body


class StepListView(OpenAIView):
    """GET: a run's steps."""

    required_roles = {"GET": Role.READER}

    def get(self, request: Request, thread_id: str, run_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        run = find_run(self.project, thread, run_id)
        include = _include(request, self)
        params = self.validated(ListInput, request.query_params)
        steps = RunStep.objects.filter(run=run)

        def shape(step: RunStep) -> dict[str, Any]:
            return _step_body(step, run, thread, include)

        return self.cursor_list(request, steps, shape, params=params)


class StepDetailView(OpenAIView):
    """GET: one step of a run."""

    required_roles = {"GET": Role.READER}

    def get(self, request: Request, thread_id: str, run_id: str, step_id: str) -> Response:
        thread = find_thread(self.project, thread_id)
        run = find_run(self.project, thread, run_id)
        step = find(RunStep, self.project, step_id, run=run)
        return Response(_step_body(step, run, thread, _include(request, self)))
