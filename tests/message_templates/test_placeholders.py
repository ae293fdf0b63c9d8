"""Template placeholders follow Meta's syntax, in one parser that forms, sends and the thread all share."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigdesk.errors import UserError
from sigdesk.message_templates import placeholders
from sigdesk.message_templates.placeholders import TemplateMalformed


def body(text, **extra):
    return [{"type": "BODY", "text": text, **extra}]


def test_positional_placeholders_are_numbered_variables_per_component():
    layout = placeholders.parse(
        [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            *body("Hi {{1}}, order {{2}} is ready"),
            {"type": "FOOTER", "text": "Thanks"},
        ]
    )
    assert layout.variables() == {"header": 1, "body": 2} and not layout.named
    assert layout.fields() == {"header": ["1"], "body": ["1", "2"]}


def test_the_stored_json_text_is_read_as_meta_listed_it():
    assert placeholders.parse(json.dumps(body("Hi {{1}}"))).variables() == {"body": 1}
    assert placeholders.parse(None).variables() == {} and placeholders.parse("").variables() == {}


def test_a_repeated_placeholder_is_one_variable():
    assert placeholders.parse(body("{{1}} and {{1}} again, then {{2}}")).variables() == {"body": 2}


def test_out_of_order_numbers_are_filled_by_number_not_by_appearance():
    layout = placeholders.parse(body("Ready at {{2}} for {{1}}."))
    components = placeholders.fill(layout, {"body": ["Rosa", "5 pm"]})
    assert [p["text"] for p in components[0]["parameters"]] == ["Rosa", "5 pm"]
    assert placeholders.render(layout, components) == "Ready at 5 pm for Rosa."


def test_a_gap_in_the_numbers_is_malformed_and_names_the_component():
    with pytest.raises(TemplateMalformed, match=r"body uses \{\{3\}\} but has no \{\{2\}\}") as caught:
        placeholders.parse(body("Hi {{1}}, see {{3}}"))
    assert caught.value.field == "body" and isinstance(caught.value, UserError)


def test_named_placeholders_are_sent_with_their_parameter_names():
    layout = placeholders.parse(body("Hi {{first_name}}, order {{order_id}} for {{first_name}}"), "NAMED")
    assert layout.named and layout.fields() == {"body": ["first_name", "order_id"]}
    components = placeholders.fill(layout, {"body": {"order_id": "#12", "first_name": "Rosa"}})
    assert components == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Rosa", "parameter_name": "first_name"},
                {"type": "text", "text": "#12", "parameter_name": "order_id"},
            ],
        }
    ]
    assert placeholders.render(layout, components) == "Hi Rosa, order #12 for Rosa"


def test_a_list_of_values_fills_named_placeholders_in_order_of_appearance():
    layout = placeholders.parse(body("Hi {{first_name}}, order {{order_id}}"))
    assert placeholders.fill(layout, {"body": ["Rosa", "#12"]})[0]["parameters"][1]["parameter_name"] == "order_id"


@pytest.mark.parametrize(
    "text",
    [
        "Hi {{ 1 }}, order {{2}}",
        "Hi {{1 }}",
        "Hi {{First}}",
        "Hi {{1a}}",
        "Hi {{}}",
        "Hi {{first name}}",
        "Hi {{0}}",
        "Hi {{1}",
        "Hi {{{1}}}",
        "Hi }} {{1}}",
    ],
)
def test_anything_meta_would_not_approve_is_malformed_not_guessed(text):
    with pytest.raises(TemplateMalformed, match="body"):
        placeholders.parse(body(text))


def test_whitespace_inside_braces_is_refused_with_meta_s_format_in_the_message():
    with pytest.raises(TemplateMalformed, match=r"'\{\{ 1 \}\}'.*\{\{1\}\}.*without spaces"):
        placeholders.parse(body("Hi {{ 1 }}, order {{2}}"))


def test_one_template_uses_one_kind_of_placeholder():
    with pytest.raises(TemplateMalformed, match="mixes numbered and named"):
        placeholders.parse(body("Hi {{1}}, order {{order_id}}"))
    with pytest.raises(TemplateMalformed, match="declared NAMED"):
        placeholders.parse(body("Hi {{1}}"), "NAMED")


def test_footers_take_no_variables():
    with pytest.raises(TemplateMalformed, match="footer"):
        placeholders.parse([{"type": "FOOTER", "text": "Sent {{1}}"}])


@pytest.mark.parametrize("kind", ["IMAGE", "VIDEO", "DOCUMENT"])
def test_a_media_header_takes_a_link_and_a_text_header_takes_text(kind):
    layout = placeholders.parse([{"type": "HEADER", "format": kind}, *body("Your receipt, {{1}}")])
    assert layout.variables() == {"header": 1, "body": 1}
    components = placeholders.fill(layout, {"header": ["https://example.com/receipt"], "body": ["Rosa"]})
    media = kind.lower()
    link = {"link": "https://example.com/receipt"}
    assert components[0] == {"type": "header", "parameters": [{"type": media, media: link}]}
    assert placeholders.render(layout, components) == "Your receipt, Rosa"
    with pytest.raises(UserError, match=f"link to the {media}") as caught:
        placeholders.fill(layout, {"header": ["receipt.pdf"], "body": ["Rosa"]})
    assert caught.value.field == "params.header"


def test_a_text_header_without_variables_needs_nothing():
    layout = placeholders.parse([{"type": "HEADER", "format": "TEXT", "text": "Hello"}, *body("Plain")])
    assert layout.variables() == {} and placeholders.fill(layout, {}) == []
    assert placeholders.render(layout, []) == "Hello\nPlain"


def test_location_headers_are_refused_in_words():
    layout = placeholders.parse([{"type": "HEADER", "format": "LOCATION"}])
    with pytest.raises(UserError, match="cannot fill a location header"):
        placeholders.fill(layout, {"header": ["somewhere"]})


def test_url_and_copy_code_buttons_are_filled_by_their_index():
    layout = placeholders.parse(
        [
            *body("Track it"),
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
                    {"type": "URL", "text": "Home", "url": "https://shop.example/"},
                    {"type": "COPY_CODE", "example": "SAVE10"},
                ],
            },
        ]
    )
    assert layout.variables() == {"button_1": 1, "button_3": 1}
    components = placeholders.fill(layout, {"button_1": ["A12"], "button_3": ["SAVE10"]})
    assert components == [
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "A12"}]},
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "3",
            "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
        },
    ]
    with pytest.raises(UserError, match="button 2") as caught:
        placeholders.fill(layout, {"button_3": ["SAVE10"]})
    assert caught.value.field == "params.button_1"


def test_a_url_button_variable_must_be_the_url_s_end():
    with pytest.raises(TemplateMalformed, match="button 1 URL may only end in one variable"):
        placeholders.parse([{"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.example/{{1}}/more"}]}])


def test_named_templates_keep_numbered_url_buttons():
    layout = placeholders.parse(
        [
            *body("Hi {{first_name}}"),
            {"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.example/{{1}}"}]},
        ]
    )
    assert layout.named and layout.fields() == {"body": ["first_name"], "button_0": ["1"]}


@pytest.mark.parametrize(
    "components",
    [
        "{not json",
        '{"type": "BODY"}',
        '["BODY"]',
        '[{"type": "BODY", "text": 5}]',
        '[{"type": "BUTTONS", "buttons": "URL"}]',
    ],
)
def test_malformed_components_raise_one_clear_error(components):
    with pytest.raises(TemplateMalformed) as caught:
        placeholders.parse(components)
    assert caught.value.status == 422 and "template" in str(caught.value)


def test_missing_or_blank_values_name_the_component():
    layout = placeholders.parse([{"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"}, *body("Hi {{1}} {{2}}")])
    with pytest.raises(UserError, match="Fill in all 2 variables of the template's body") as caught:
        placeholders.fill(layout, {"header": ["#1"], "body": ["Rosa", "  "]})
    assert caught.value.field == "params.body"
    with pytest.raises(UserError, match="Fill in all 1 variable of the template's header"):
        placeholders.fill(layout, {"body": ["Rosa", "x"]})


def test_values_whatsapp_refuses_are_refused_before_the_send():
    layout = placeholders.parse(body("Hi {{1}}"))
    for bad in ["two\nlines", "tab\there", "five     spaces", "x" * 1025]:
        with pytest.raises(UserError):
            placeholders.fill(layout, {"body": [bad]})


def test_check_refuses_a_send_that_leaves_a_variable_empty():
    layout = placeholders.parse([{"type": "HEADER", "format": "IMAGE"}, *body("Hi {{1}} {{2}}")])
    with pytest.raises(UserError, match="body needs 2 values"):
        placeholders.check(
            layout,
            [
                {"type": "header", "parameters": [{"type": "image", "image": {"id": "9"}}]},
                {"type": "body", "parameters": [{"type": "text", "text": "Rosa"}]},
            ],
        )
    with pytest.raises(UserError, match="header needs 1 value"):
        placeholders.check(layout, [{"type": "body", "parameters": [{"type": "text", "text": "a"}] * 2}])
    placeholders.check(layout, placeholders.fill(layout, {"header": ["https://x.example/a.png"], "body": ["a", "b"]}))
    placeholders.check(placeholders.parse("[]"), None)


def test_render_keeps_placeholders_nothing_was_sent_for_and_survives_junk():
    layout = placeholders.parse(body("Hi {{1}}, order {{2}}"))
    assert (
        placeholders.render(layout, [{"type": "body", "parameters": [{"type": "text", "text": "Rosa"}]}])
        == "Hi Rosa, order {{2}}"
    )
    assert placeholders.render(layout, "junk") == "Hi {{1}}, order {{2}}"
    assert placeholders.render(layout, [None, {"type": "body", "parameters": [5]}]) == "Hi {{1}}, order {{2}}"


names = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
words = st.text(st.characters(blacklist_characters="{}\n\t", blacklist_categories=("Cs",)), max_size=12)
values = st.text(
    st.characters(blacklist_characters="\n\t", blacklist_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda value: value.strip() and "     " not in value)


@given(st.lists(st.integers(1, 9), min_size=1, max_size=12), st.lists(words, min_size=22, max_size=22))
def test_any_text_using_1_to_n_parses_to_n_variables_and_round_trips(numbers, gaps):
    used = sorted(set(numbers))
    numbers = numbers + [n for n in range(1, max(used) + 1) if n not in used]
    text = "".join(gap + "{{%d}}" % n for gap, n in zip(gaps, numbers)) + gaps[-1]
    layout = placeholders.parse(body(text))
    count = max(numbers)
    assert layout.variables() == {"body": count}
    filled = [f"<{n}>" for n in range(1, count + 1)]
    rendered = placeholders.render(layout, placeholders.fill(layout, {"body": filled}))
    assert rendered == text.replace("{{", "<").replace("}}", ">") or (rendered is None and not text)


@given(st.lists(names, min_size=1, max_size=6), st.lists(values, min_size=6, max_size=6))
def test_any_named_template_fills_by_name_and_renders_the_values(keys, given_values):
    text = "Dear " + ", ".join("{{%s}}" % key for key in keys) + "."
    layout = placeholders.parse(body(text))
    distinct = list(dict.fromkeys(keys))
    mapping = dict(zip(distinct, given_values))
    components = placeholders.fill(layout, {"body": mapping})
    assert [p["parameter_name"] for p in components[0]["parameters"]] == distinct
    assert placeholders.render(layout, components) == "Dear " + ", ".join(mapping[key].strip() for key in keys) + "."


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_the_one_error(text):
    try:
        placeholders.parse(body(text))
    except TemplateMalformed as exc:
        assert exc.field == "body" or exc.field is None
