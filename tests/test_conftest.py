"""The suite's own shortcuts (tests/conftest.py) change no answer: they only skip work done before."""

from __future__ import annotations

from werkzeug.routing import Map, Rule

from tests import conftest


def _state(rule: Rule) -> tuple:
    values = {name: "7" for name in rule.arguments}
    return (
        rule._parts,
        rule._trace,
        rule.arguments,
        {name: type(converter) for name, converter in rule._converters.items()},
        rule.build(values, append_unknown=True),
        rule.build(values, append_unknown=False),
    )


def test_each_url_rule_compiled_once_for_the_process_is_what_werkzeug_itself_makes(app, monkeypatch):
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100
    shared, own = Map(), Map()
    for rule in rules:
        shared.add(rule.empty())  # as the next test's app gets it: from the shared compilation
    with monkeypatch.context() as patched:
        patched.setattr(Rule, "compile", conftest._compile)
        for rule in rules:
            own.add(rule.empty())
    for made, expected in zip(shared.iter_rules(), own.iter_rules(), strict=True):
        assert _state(made) == _state(expected), expected.rule
