"""End-to-end ingest: real feeds over a real local HTTP server, the real store; the real Whisper model on the
Datacast clip, the fake transcriber (tests/fakes.py) where a test needs a transcript, not Whisper's."""

import re
import shutil

import pytest
from click.testing import CliRunner

from archive.cli import cli
from archive.db import open_db
from conftest import ROOT, SHARED
from fakes import FakeTranscriber
from ingest.pipeline import IngestOptions, ingest_sources

DATACAST = SHARED / "datacast"
CORPUS = SHARED / "corpus"


def normalise_words(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    return re.sub(r"[^a-z0-9' ]+", " ", text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(" ".join(normalise_words(reference)), " ".join(normalise_words(hypothesis)))


def run_cli(*args, db_path):
    return CliRunner().invoke(cli, [*args, "--db", str(db_path)], catch_exceptions=False)


def transcript_count(db, show_title=None):
    return db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]


@pytest.fixture
def fake_whisper(monkeypatch):
    """The CLI's transcriber is the fake one."""
    monkeypatch.setattr("ingest.transcribe.WhisperTranscriber", lambda options=None: FakeTranscriber())


@pytest.mark.slow
def test_datacast_clip_over_http_is_transcribed_by_the_bundled_model(serve, tmp_path):
    base = serve(DATACAST)
    db = open_db(tmp_path / "a.db")
    report = ingest_sources(db, [f"{base}/feed-short.xml"], IngestOptions(media_dir=tmp_path / "media", index=False))
    assert report.ok, report.failures
    episode = db.execute("SELECT id, enclosure_url FROM episodes WHERE guid = 'datacast-070-short'").fetchone()
    assert episode[1] == f"{base}/episode-070-short.mp3"  # relative enclosure resolved against the feed URL
    row = db.execute("SELECT source, model, segment_count FROM transcripts WHERE episode_id = ?",
                     [episode[0]]).fetchone()
    assert row[0] == "whisper" and row[1] and row[2] > 0
    text = " ".join(r[0] for r in db.execute(
        "SELECT text FROM segments s JOIN transcripts t ON t.id = s.transcript_id ORDER BY idx"))
    reference = (DATACAST / "episode-070-short-reference.txt").read_text()
    wer = word_error_rate(reference, text)
    assert wer < 0.25, f"word error rate {wer:.3f}"
    times = list(db.execute("SELECT start, end FROM segments ORDER BY idx"))
    assert all(0 <= s <= e <= 60 for s, e in times)
    assert [s for s, _ in times] == sorted(s for s, _ in times)
    audio = db.execute("SELECT bytes, sha256 FROM audio WHERE episode_id = ?", [episode[0]]).fetchone()
    assert audio[0] == (DATACAST / "episode-070-short.mp3").stat().st_size and len(audio[1]) == 64

    # A second run does no work twice: the feed is not modified (304) and the transcript is kept.
    again = ingest_sources(db, [f"{base}/feed-short.xml"], IngestOptions(media_dir=tmp_path / "media", index=False))
    assert again.ok and again.transcripts_made == 0
    assert transcript_count(db) == 1


def test_datatalks_feed_over_http_keeps_every_transcript_with_speakers(serve, tmp_path):
    base = serve(CORPUS)
    db = open_db(tmp_path / "dtc.db")
    report = ingest_sources(db, [f"{base}/datatalksclub_podcast/feed.xml"], IngestOptions(index=False))
    assert report.ok, report.failures[:5]
    offered = db.execute("SELECT COUNT(DISTINCT episode_id) FROM feed_transcripts").fetchone()[0]
    assert offered == 198
    assert transcript_count(db) == offered
    without_speakers = db.execute(
        """SELECT COUNT(*) FROM transcripts t WHERE NOT EXISTS
           (SELECT 1 FROM segments s WHERE s.transcript_id = t.id AND s.speaker IS NOT NULL)"""
    ).fetchone()[0]
    assert without_speakers == 0
    bad_times = db.execute("SELECT COUNT(*) FROM segments WHERE start IS NULL OR end < start").fetchone()[0]
    assert bad_times == 0
    assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] > 20000


@pytest.mark.slow
def test_twiml_feed_over_http_keeps_every_transcript_with_times(serve, tmp_path):
    base = serve(CORPUS)
    db = open_db(tmp_path / "twiml.db")
    report = ingest_sources(db, [f"{base}/twiml_whisper_transcripts/feed.xml"], IngestOptions(index=False))
    assert report.ok, report.failures[:5]
    assert db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 537
    assert transcript_count(db) == 537
    # VTT cues without an hours field still carry real times: long episodes go past the hour mark.
    assert db.execute("SELECT MAX(end) FROM segments").fetchone()[0] > 3600
    assert db.execute("SELECT COUNT(*) FROM segments WHERE end < start").fetchone()[0] == 0
    # Episodes 85 and 86 hold byte-identical transcripts under different titles: both kept, one each.
    hashes = db.execute(
        """SELECT t.content_hash FROM transcripts t JOIN episodes e ON e.id = t.episode_id
           WHERE e.guid IN ('twiml-85', 'twiml-86')"""
    ).fetchall()
    assert len(hashes) == 2 and hashes[0] == hashes[1]


def test_rerun_does_no_work_twice_and_writes_no_duplicates(tmp_path):
    db = open_db(tmp_path / "demo.db")
    options = IngestOptions(index=False, media_dir=tmp_path / "media")
    feed = str(CORPUS / "datatalksclub_podcast" / "feed.xml")
    first = ingest_sources(db, [feed], options)
    assert first.transcripts_made == 198
    before = {t: db[t].count for t in ("shows", "episodes", "transcripts", "segments", "feed_transcripts")}
    second = ingest_sources(db, [feed], options)
    assert second.ok and second.transcripts_made == 0 and second.episodes_new == 0
    assert {t: db[t].count for t in before} == before


def test_metadata_only_then_plain_ingest_does_the_rest(tmp_path, fake_whisper):
    db_path = tmp_path / "m.db"
    source = tmp_path / "demo"
    shutil.copytree(ROOT / "demo", source)
    result = run_cli("ingest", "--metadata-only", str(source / "feed.xml"), db_path=db_path)
    assert result.exit_code == 0, result.output
    db = open_db(db_path)
    assert db["episodes"].count == 3 and db["transcripts"].count == 0 and db["audio"].count == 0
    result = run_cli("ingest", "--no-index", "--media-dir", str(tmp_path / "media"), str(source / "feed.xml"),
                     db_path=db_path)
    assert result.exit_code == 0, result.output
    assert db["transcripts"].count == 3


def test_a_broken_feed_fails_alone_and_is_reported(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<html><body>This is not a feed \x00\xff</body></html>")
    db_path = tmp_path / "b.db"
    good = CORPUS / "datatalksclub_podcast" / "feed.xml"
    result = run_cli("ingest", "--no-index", str(broken), str(good), str(tmp_path / "missing.xml"), db_path=db_path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "broken.xml" in result.output and "missing.xml" in result.output
    assert open_db(db_path)["transcripts"].count == 198
    status = run_cli("status", db_path=db_path)
    assert status.exit_code == 0 and "feed error" in status.output


def test_corrupt_and_missing_audio_fail_only_their_episode(serve, tmp_path, fake_whisper):
    site = tmp_path / "site"
    site.mkdir()
    (site / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    shutil.copy(ROOT / "demo" / "episode-2.vtt", site / "episode-2.vtt")
    (site / "feed.xml").write_text(
        """<?xml version="1.0"?><rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0">
        <channel><title>Bad audio</title>
        <item><title>Corrupt</title><guid>corrupt</guid><enclosure url="corrupt.mp3" type="audio/mpeg" length="1"/></item>
        <item><title>Gone</title><guid>gone</guid><enclosure url="gone.mp3" type="audio/mpeg" length="1"/></item>
        <item><title>Fine</title><guid>fine</guid><podcast:transcript url="episode-2.vtt" type="text/vtt"/></item>
        </channel></rss>"""
    )
    base = serve(site)
    db_path = tmp_path / "c.db"
    args = ["ingest", "--no-index", "--media-dir", str(tmp_path / "media"), f"{base}/feed.xml"]
    result = run_cli(*args, db_path=db_path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    db = open_db(db_path)
    assert db["transcripts"].count == 1
    failed = {row["guid"]: row for row in db.query(
        "SELECT e.guid, s.stage, s.attempts, s.last_error FROM stages s JOIN episodes e ON e.id = s.episode_id "
        "WHERE s.state = 'failed'")}
    assert set(failed) == {"corrupt", "gone"}
    assert "404" in failed["gone"]["last_error"]
    status = run_cli("status", db_path=db_path)
    assert "corrupt" in status.output and "gone" in status.output
    # a later run retries the failures
    run_cli(*args, db_path=db_path)
    attempts = dict(db.execute("SELECT e.guid, s.attempts FROM stages s JOIN episodes e ON e.id = s.episode_id "
                               "WHERE s.state = 'failed'").fetchall())
    assert attempts and all(n >= 2 for n in attempts.values())


def test_usage_errors_exit_2_and_unknown_guid_is_a_clean_error(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest"]).exit_code == 2
    assert runner.invoke(cli, ["transcript", "x", "--format", "doc"]).exit_code == 2
    missing = tmp_path / "e.db"
    for command in (["transcript", "no-such-guid"], ["search", "data"], ["status"], ["takeaways", "x"],
                    ["chapters", "x"], ["producer", "list"]):  # the commands that only read create no archive
        result = runner.invoke(cli, [*command, "--db", str(missing)])
        assert result.exit_code == 1 and "no archive at" in result.output and "podarchive ingest" in result.output
        assert not missing.exists()
    open_db(missing).conn.close()
    result = runner.invoke(cli, ["transcript", "no-such-guid", "--db", str(missing)])
    assert result.exit_code == 1 and "no episode" in result.output


def test_transcript_command_prints_every_format(tmp_path, fake_whisper):
    db_path = tmp_path / "t.db"
    run_cli("ingest", "--no-index", str(ROOT / "demo" / "feed.xml"), "--media-dir", str(tmp_path / "m"),
            db_path=db_path)
    vtt = run_cli("transcript", "podarchive-demo-2", "--format", "vtt", db_path=db_path).output
    assert vtt.startswith("WEBVTT") and "<v Lena Brandt>" in vtt
    srt = run_cli("transcript", "podarchive-demo-3", "--format", "srt", db_path=db_path).output
    assert "00:00:06,724 --> 00:00:17,802" in srt
    import json

    data = json.loads(run_cli("transcript", "podarchive-demo-2", "--format", "json", db_path=db_path).output)
    assert data["segments"][1]["speaker"] == "Lena Brandt"
    txt = run_cli("transcript", "podarchive-demo-3", db_path=db_path).output
    assert "Tomas Reyes" in txt and "cache, not a cluster" in txt
