"""Memory.learn_many: a batch on the bulk path, one result per item, dedup and audit kept."""

from __future__ import annotations

import asyncio
import getpass

import pytest

from engramia import LearnResult, Memory
from engramia.errors import EngramiaValidationError
from memory.models import Evaluation, Pattern
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

SDK_LABEL = f"sdk:{getpass.getuser()}"


def test_learn_many_stores_in_order_and_skips_duplicates(project_a):
    memory = Memory("acme/support")
    known = memory.learn("Parse a CSV file", "csv.reader(f)")
    results = memory.learn_many(
        [
            {"task": "Send an email over SMTP", "code": "smtplib", "eval_score": 8},
            {"task": "parse a csv file!", "code": "pandas"},  # the stored pattern's task
            {"task": "Resize an image", "code": "PIL", "external_id": "img-1"},
            {"task": "send an email over smtp", "code": "again"},  # repeats the first item
            {"task": "Crop an image", "code": "PIL", "external_id": "img-1"},  # same external id
        ]
    )
    assert all(isinstance(result, LearnResult) for result in results)
    assert [result.stored for result in results] == [True, False, True, False, False]
    assert results[1].duplicate_of == known.pattern_id
    assert results[3].duplicate_of == results[0].pattern_id
    assert results[4].duplicate_of == results[2].pattern_id
    stored = Pattern.objects.filter(pk__in=[results[0].pattern_id, results[2].pattern_id])
    assert {p.source for p in stored} == {"sdk"} and Pattern.objects.count() == 3

    email = Pattern.objects.get(pk=results[0].pattern_id)
    assert email.eval_score == 8 and email.eval_count == 1
    evaluation = Evaluation.objects.get(pattern=email)
    created = AuditEntry.objects.filter(action=AuditEntry.Action.CREATE, actor_email=SDK_LABEL)
    for model, pk in (("pattern", email.pk), ("pattern", results[2].pattern_id)):
        assert created.filter(content_type__model=model, object_pk=str(pk)).exists()
    assert created.filter(content_type__model="evaluation", object_pk=str(evaluation.pk)).exists()


def test_keep_both_stores_near_duplicates(project_a):
    memory = Memory("acme/support")
    memory.learn("Parse a CSV file", "csv.reader(f)")
    results = memory.learn_many(
        [{"task": "Parse a CSV file", "code": "v2"}, {"task": "parse a csv file", "code": "v3"}],
        on_duplicate="keep_both",
    )
    assert [result.stored for result in results] == [True, True]
    assert Pattern.objects.count() == 3


def test_learn_many_refuses_bad_items_naming_the_field(project_a):
    memory = Memory("acme/support")
    with pytest.raises(EngramiaValidationError) as error:
        memory.learn_many([{"task": "ok", "code": "c"}, {"task": "", "code": "c"}])
    assert "items" in str(error.value.errors)
    with pytest.raises(EngramiaValidationError):
        memory.learn_many([{"task": "ok", "code": "c"}], on_duplicate="replace_with_better")
    with pytest.raises(EngramiaValidationError):
        memory.learn_many([])
    with pytest.raises(EngramiaValidationError):
        memory.learn_many("not a list")  # type: ignore[arg-type]
    assert not Pattern.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_alearn_many_is_the_async_twin():
    memory = Memory("acme/support")  # async twins run on worker threads: committed rows only
    results = asyncio.run(
        memory.alearn_many(
            [{"task": "Send an email", "code": "smtplib"}, {"task": "Resize", "code": "x"}]
        )
    )
    assert [result.stored for result in results] == [True, True]
    assert Pattern.objects.filter(source="sdk").count() == 2
