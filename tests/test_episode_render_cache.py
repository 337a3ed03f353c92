"""The episode page's rendered transcript, cached per version of the transcript (archive/web/episode_view.py
`transcript_view`, issue 14): the second request is served the first one's rendering; a producer's correction, a
speaker renamed, a new machine transcript (even under the old one's id) and a chapter moved show at once; the
moment (?t=) stays per request; the cache keeps within its bounds."""

import re

import pytest

from archive.corrections import edit_line, rename_speaker, undo
from archive.db import open_db
from archive.producers import Producer
from archive.records import Segment, TranscriptSource, Word
from archive.transcript_reading import anchor_second, reading_paragraphs, sentence_at
from archive.transcript_store import load_segments, save_transcript
from archive.web import episode_view
from archive.web.episode_view import (ReadingView, RenderedTranscript, TranscriptCache, render_transcript,
                                      transcript_cache, transcript_view)
from web_fixtures import make_app, read_dtc_episode

ALICE = Producer(1, "alice")
LINES = [  # (speaker, text): six seconds each
    ("SPEAKER_0", "Welcome back to the show about running software in the cloud."),
    ("SPEAKER_0", "Today we talk about moving a startup to ML on web services."),
    ("SPEAKER_1", "Thanks for having me. We moved everything to ML on Web Services last year."),
    ("SPEAKER_1", "The database went first, then the queues."),
    ("SPEAKER_0", "Why did you pick that cloud over the others?"),
    ("SPEAKER_1", "Mostly the managed services. Storage is cheap and durable."),
]


def lines(texts=LINES, words_on=(3,)) -> list[Segment]:
    segments = []
    for i, (speaker, text) in enumerate(texts):
        tokens = text.split()
        words = [Word(" " + token, round(i * 6 + k * 6 / len(tokens), 3), round(i * 6 + (k + 1) * 6 / len(tokens), 3),
                      0.9) for k, token in enumerate(tokens)] if i in words_on else None
        segments.append(Segment(i * 6.0, (i + 1) * 6.0, text, speaker, words))
    return segments


WHISPER = TranscriptSource(source="whisper", format="whisper", model="tiny.en", content_hash="audio")


@pytest.fixture
def site(tmp_path):
    """A file archive with one episode and its Whisper transcript, the app over it, and a writer connection."""
    path = tmp_path / "archive.db"
    db = open_db(path)
    with db.conn:
        show = db["shows"].insert({"feed_url": "https://example.com/cloud.xml", "title": "Cloud Talk"}).last_pk
        episode = db["episodes"].insert({"show_id": show, "guid": "cloud-1", "title": "Moving to the cloud"}).last_pk
    save_transcript(db, episode, lines(), WHISPER)
    app = make_app(path)
    yield app, db, episode
    db.conn.close()


def transcript_html(response) -> str:
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    return page[page.index('<div class="para'):page.rindex("</p></div>") + len("</p></div>")]


def shown(response) -> str:
    """The transcript's text as a reader sees it (tags, and so anchors and word spans, left out)."""
    return " ".join(re.sub(r"<[^>]+>", "", transcript_html(response)).split())


def count_renders(monkeypatch) -> list:
    calls = []
    real = episode_view.render_transcript

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(episode_view, "render_transcript", counted)
    return calls


def test_second_request_is_served_the_first_rendering(site, monkeypatch):
    app, _, episode = site
    renders = count_renders(monkeypatch)
    client = app.test_client()
    first = client.get(f"/episodes/{episode}").get_data(as_text=True)
    second = client.get(f"/episodes/{episode}").get_data(as_text=True)
    assert first == second
    assert "Thanks for having me." in shown(client.get(f"/episodes/{episode}"))
    assert len(renders) == 1 and len(transcript_cache(app)) == 1


def test_the_moment_stays_per_request(site, monkeypatch):
    app, _, episode = site
    renders = count_renders(monkeypatch)
    client = app.test_client()
    plain = transcript_html(client.get(f"/episodes/{episode}"))
    at_12 = transcript_html(client.get(f"/episodes/{episode}?t=12"))
    at_31 = transcript_html(client.get(f"/episodes/{episode}?t=31"))
    again = transcript_html(client.get(f"/episodes/{episode}"))
    assert len(renders) == 1
    assert "is-current" not in plain and again == plain
    for page, expected in ((at_12, "Thanks for having me."), (at_31, "Mostly the managed services.")):
        assert page.count('class="s is-current"') == 1 and page.count('class="para is-current"') == 1
        current = re.search(r'<span class="s is-current"[^>]*>(.*?)</span>(?= <span class="s"|</p>)', page)
        assert expected in re.sub(r"<[^>]+>", "", current.group(1))
        assert page.replace(" is-current", "") == plain  # nothing else differs
    cached = next(iter(transcript_cache(app)._entries.values()))
    assert not any("is-current" in part for part in cached.heads + sum(cached.sentences, ()))


def test_a_correction_and_its_undo_show_at_once(site):
    app, db, episode = site
    client = app.test_client()
    assert "ML on Web Services" in shown(client.get(f"/episodes/{episode}"))
    correction = edit_line(db, episode, 2, "Thanks for having me. We moved everything to Amazon Web Services.", ALICE)
    page = shown(client.get(f"/episodes/{episode}"))
    assert "Amazon Web Services." in page and "ML on Web Services" not in page
    undo(db, episode, correction, ALICE)
    page = shown(client.get(f"/episodes/{episode}"))
    assert "Amazon" not in page and "ML on Web Services" in page


def test_a_speaker_renamed_shows_at_once(site):
    app, db, episode = site
    client = app.test_client()
    assert "SPEAKER_1" in transcript_html(client.get(f"/episodes/{episode}"))
    rename_speaker(db, episode, "SPEAKER_1", "Dana Cloud", ALICE)
    page = transcript_html(client.get(f"/episodes/{episode}"))
    assert '<span class="speaker">Dana Cloud</span>' in page and "SPEAKER_1" not in page


def test_a_new_transcript_shows_at_once_even_under_the_old_id(site):
    app, db, episode = site
    client = app.test_client()
    old_id = db.execute("SELECT id FROM transcripts WHERE episode_id = ?", [episode]).fetchone()[0]
    assert "cheap and durable." in shown(client.get(f"/episodes/{episode}"))
    texts = LINES[:-1] + [("SPEAKER_1", "Mostly the managed services. Storage is cheap and reliable.")]
    # the same lines, words timed this time: only the word timings change what the page shows for them
    new_id = save_transcript(db, episode, lines(texts, words_on=range(6)), WHISPER)
    assert new_id == old_id  # SQLite hands the deleted row's id out again: an id alone cannot key the cache
    response = client.get(f"/episodes/{episode}")
    assert "cheap and reliable." in shown(response) and "durable" not in shown(response)
    assert transcript_html(response).count('class="w"') == sum(len(text.split()) for _, text in texts)


def test_a_chapter_added_or_moved_shows_at_once(site):
    app, db, episode = site
    client = app.test_client()

    def paragraph_starts() -> list[float]:
        page = transcript_html(client.get(f"/episodes/{episode}"))
        return [float(start) for start in re.findall(r'<div class="para" id="p\d+" data-start="([\d.]+)"', page)]

    assert paragraph_starts() == [0.0, 12.0, 24.0, 30.0]  # the speaker changes
    with db.conn:
        db["chapters"].insert({"episode_id": episode, "idx": 0, "title": "The database", "start": 18.0,
                               "source": "feed"})
    assert paragraph_starts() == [0.0, 12.0, 18.0, 24.0, 30.0]
    with db.conn:
        db.execute("UPDATE chapters SET start = 33.0 WHERE episode_id = ?", [episode])  # "Storage is cheap ..."
    starts = paragraph_starts()
    assert starts[:4] == [0.0, 12.0, 24.0, 30.0] and len(starts) == 5 and 32.0 < starts[4] <= 33.0


def test_the_same_as_rendering_every_time_on_a_real_transcript():
    """A real DataTalks.Club transcript and chapters: the cached view marks the same sentence and names the same
    anchor as transcript_reading's own functions, for every second and beyond either end."""
    segments, chapters = read_dtc_episode("ab-testing-and-product-experimentation")
    breaks = [chapter["start"] for chapter in chapters]
    paragraphs = reading_paragraphs(segments, breaks)
    view = ReadingView(render_transcript(segments, breaks))
    last = int(paragraphs[-1].end)
    for second in [-3, None, 0.4, *range(0, last + 5, 7), last, last + 100]:
        assert view.anchor_for(second) == ("" if second is None else f"t{anchor_second(paragraphs, second)}")
        assert view.current(second) == (None if second is None else sentence_at(paragraphs, second))
    html = str(view.html(600))
    assert html.count('id="p') == len(paragraphs)
    sentences = sum(len(paragraph.sentences) for paragraph in paragraphs)
    assert len(re.findall(r'class="s( is-current)?"', html)) == sentences
    assert html.count("is-current") == 2


def test_no_transcript():
    view = ReadingView()
    assert not view and view.anchor_for(10) == "" and view.html(10) == "" and view.current(10) is None


def test_the_cache_keeps_within_its_bounds():
    def rendered(chars: int) -> RenderedTranscript:
        return RenderedTranscript(("x" * chars,), ((),), (), 0)

    size = rendered(1000).size
    cache = TranscriptCache(max_bytes=3 * size, max_entries=10)
    for key in "abc":
        cache.put(key, rendered(1000))
    assert cache.get("a") is not None  # a: used last now
    cache.put("d", rendered(1000))
    assert cache.get("b") is None and all(cache.get(key) for key in "acd")  # the least recently used went
    assert len(cache) == 3 and cache.bytes == 3 * size
    cache.put("big", rendered(10_000))  # bigger than the whole cache: not kept, nothing dropped for it
    assert cache.get("big") is None and len(cache) == 3
    cache.put("a", rendered(1000))  # the same key again: replaced, not counted twice
    assert cache.bytes == 3 * size
    few = TranscriptCache(max_bytes=10**9, max_entries=2)
    for key in "abcde":
        few.put(key, rendered(10))
    assert len(few) == 2 and few.get("e") and few.get("d")


def test_the_apps_cache_is_bounded_across_episodes(site):
    app, db, episode = site
    with db.conn:
        others = [db["episodes"].insert({"show_id": 1, "guid": f"cloud-{n}", "title": f"Episode {n}"}).last_pk
                  for n in range(2, 5)]
    for other in others:
        save_transcript(db, other, lines(), WHISPER)
    app.extensions["podarchive.transcripts"] = cache = TranscriptCache(max_entries=2)
    client = app.test_client()
    for episode_id in [episode, *others]:
        assert "Thanks for having me." in transcript_html(client.get(f"/episodes/{episode_id}"))
    assert len(cache) == 2


def test_transcript_view_without_a_cache(site):
    _, db, episode = site
    view = transcript_view(db, episode, [])
    assert str(view.html()) == str(ReadingView(render_transcript(load_segments(db, episode))).html())
