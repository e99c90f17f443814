"""validate_input: the same answers as a fresh serializer, without rebuilding its fields."""

import contextlib
import threading

import pytest
from rest_framework import serializers

from engramia_site.errors import InvalidInput
from jobs.operations import validate_input
from memory.inputs import LearnManySerializer, LearnSerializer


def _errors(serializer_class, data):
    with pytest.raises(InvalidInput) as caught:
        validate_input(serializer_class, data)
    return caught.value


def test_repeated_validation_gives_what_a_fresh_serializer_gives():
    good = {"task": "Parse a CSV file", "code": "import csv", "eval_score": 7}
    for data in (good, {**good, "on_duplicate": "merge"}, {"code": 1}, good, {"task": "t"}):
        fresh = LearnSerializer(data=data)
        if fresh.is_valid():
            assert validate_input(LearnSerializer, data) == dict(fresh.validated_data)
        else:
            assert _errors(LearnSerializer, data).errors == fresh.errors


def test_a_serializers_fields_are_built_once_per_thread(monkeypatch):
    built = []
    original = serializers.Serializer.get_fields

    def counting(self):
        built.append(threading.get_ident())
        return original(self)

    monkeypatch.setattr(serializers.Serializer, "get_fields", counting)

    class Probe(serializers.Serializer):
        name = serializers.CharField(max_length=5)

    for name in ("a", "b", "c"):
        assert validate_input(Probe, {"name": name}) == {"name": name}
    assert "name" in _errors(Probe, {"name": "toolong"}).errors
    assert len(built) == 1

    thread = threading.Thread(target=lambda: validate_input(Probe, {"name": "d"}))
    thread.start()
    thread.join()
    assert len(built) == 2 and built[0] != built[1]  # another thread has its own copy


def test_nested_serializers_give_what_fresh_ones_give_and_are_built_once(monkeypatch):
    built = []
    original = serializers.Serializer.get_fields

    def counting(self):
        built.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(serializers.Serializer, "get_fields", counting)
    item = {"task": "Parse a CSV file", "code": "import csv"}
    calls = [
        {"items": [item]},
        {"items": [{"code": "x"}, item]},  # the first item's task is missing
        {"items": [item, {**item, "eval_score": 11}]},  # the second's score is out of range
        {"items": [item, item]},
        {"items": "not a list"},
        {"items": [item]},
    ]
    for data in calls:
        fresh = LearnManySerializer(data=data)
        if fresh.is_valid():
            assert validate_input(LearnManySerializer, data) == dict(fresh.validated_data)
        else:
            assert _errors(LearnManySerializer, data).errors == fresh.errors
    counted = len(built)
    for data in calls:
        with contextlib.suppress(InvalidInput):
            validate_input(LearnManySerializer, data)
    assert len(built) == counted  # no field rebuilt once this thread has them
