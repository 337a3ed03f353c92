"""Show notes and search snippets: nothing that runs script or loads from elsewhere survives."""

import pytest

from archive.sanitize import clean_notes, clean_snippet

ATTACKS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<p style="background:url(javascript:alert(1))">x</p>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<form action="https://evil.example"><input name="p"></form>',
    '<body onload="alert(1)">',
    '<div onmouseover="alert(1)">hover</div>',
    "<!--<script>alert(1)</script>-->",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<a href="https://ok.example" onclick="alert(1)" target="_blank">ok</a>',
    "<template><script>alert(1)</script></template>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://evil.example/">',
    '<img src="data:image/png;base64,AAAA">',
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_notes_lose_everything_dangerous(attack):
    cleaned = clean_notes(f"<p>Before</p>{attack}<p>After</p>").lower()
    for bad in ("<script", "javascript:", "vbscript:", "data:", "onerror", "onload", "onclick", "onmouseover",
                "<iframe", "<object", "<embed", "<style", "<form", "<input", "<meta", "<base", "<img", "<svg",
                "style=", "alert(1)</script"):
        assert bad not in cleaned, f"{bad!r} survived in {cleaned!r}"
    assert "before" in cleaned and "after" in cleaned


def test_links_keep_their_url_and_get_nofollow_noopener():
    cleaned = clean_notes('<p>See <a href="https://example.com/a?b=1&amp;c=2" title="t">this</a></p>')
    assert '<a href="https://example.com/a?b=1&amp;c=2" title="t" rel="nofollow noopener">this</a>' in cleaned
    assert 'rel="nofollow noopener"' in clean_notes('<a href="mailto:host@example.com" rel="me">mail</a>')


def test_formatting_survives():
    notes = "<h3>On testing</h3><p><strong>Bold</strong>, <em>em</em></p><ul><li>one</li></ul><blockquote>q</blockquote>"
    assert clean_notes(notes) == notes


def test_plain_text_notes_become_paragraphs():
    assert clean_notes("First line\nsecond line\n\nSecond paragraph & more") == (
        "<p>First line<br>second line</p><p>Second paragraph &amp; more</p>"
    )
    assert clean_notes(None) == "" and clean_notes("   ") == ""


def test_snippets_keep_only_mark():
    snippet = 'we test <mark>models</mark> <b>bold</b><script>alert(1)</script><img src=x onerror=alert(1)>'
    assert clean_snippet(snippet) == "we test <mark>models</mark> bold"
    assert clean_snippet('<mark onclick="x()">a</mark>') == "<mark>a</mark>"
    assert clean_snippet("a < b & c") == "a &lt; b &amp; c"
    assert clean_snippet(None) == ""
