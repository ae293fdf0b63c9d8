"""WhatsApp formatting and the small text helpers: escape first, then format, never broken markup."""

from sigdesk.inbox.format import initials, plain, preview_text, whatsapp


def test_whatsapp_markers_become_tags():
    assert whatsapp("*bold* _italic_ ~strike~") == "<strong>bold</strong> <em>italic</em> <s>strike</s>"
    assert whatsapp("```a *b* c```") == '<code class="mono">a *b* c</code>'
    assert whatsapp("run `ls -l` now") == "run <code>ls -l</code> now"
    assert whatsapp("*_both_*") == "<strong><em>both</em></strong>"


def test_markers_inside_words_or_with_spaces_stay_literal():
    assert whatsapp("snake_case_name and 2*3*4") == "snake_case_name and 2*3*4"
    assert whatsapp("* not bold *") == "* not bold *"


def test_everything_is_escaped_before_formatting():
    assert (
        whatsapp('<img src=x onerror="alert(1)"> *&*')
        == "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; <strong>&amp;</strong>"
    )
    assert whatsapp("a *b _c* d_") == "a <strong>b _c</strong> d_"


def test_links_are_http_only_and_keep_their_underscores():
    html = whatsapp("see https://example.com/a_b_c. or javascript:alert(1)")
    assert (
        '<a href="https://example.com/a_b_c" target="_blank" rel="noopener noreferrer nofollow">https://example.com/a_b_c</a>.'
        in html
    )
    assert "javascript:alert(1)" in html and 'href="javascript' not in html


def test_previews_initials_and_plain_text():
    assert plain("*Hi*\nthere  _you_", 80) == "Hi there you"
    assert plain("x" * 100, 10) == "xxxxxxxxx…"
    assert initials("Rosa Maria Rossi") == "RM" and initials("15551230001") == "01" and initials("") == "?"
    assert preview_text("image", "cake", False) == "📷 Photo: cake"
    assert preview_text("text", "hi", True) == "🚫 Deleted message"
