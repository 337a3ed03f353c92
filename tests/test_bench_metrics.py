"""The measures and query sets of bench/search_quality.py (bench/metrics.py), and its plain baselines on a tiny
made-up archive. No real archive is built and no judged question is searched here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT, SHARED

sys.path.insert(0, str(ROOT / "bench"))
from metrics import (  # noqa: E402
    HIT_TOLERANCE, by_set, covers, mean_scores, query_set, rrf, score_query,
)

BENCH = ROOT / "bench"
QUERY_FILES = {"queries_datatalks.json": "datatalksclub_podcast", "queries_heldout_datatalks.json":
               "datatalksclub_podcast", "queries_heldout_twiml.json": "twiml_whisper_transcripts"}


def moment(guid, start, end=None):
    return SimpleNamespace(episode_guid=guid, start=start, end=start + 45 if end is None and start is not None else end)


JUDGED = {"query": "q", "set": "heldout", "episodes": ["a", "b"], "minutes": {"a": [10]}}


def test_covers_widens_the_minute_by_the_tolerance():
    assert covers(moment("a", 600), 10)
    assert covers(moment("a", 545, 575), 10)  # ends 25 s before the minute: within 30 s
    assert not covers(moment("a", 520, 565), 10)  # ends 35 s before
    assert covers(moment("a", 520, 565), 10, HIT_TOLERANCE)
    assert covers(moment("a", 745, 790), 10, HIT_TOLERANCE) and not covers(moment("a", 755, 800), 10, HIT_TOLERANCE)
    assert not covers(moment("a", None, None), 0)  # an episode-level result has no moment


def test_score_query_episode_minute_and_hit():
    results = [moment("x", 0), moment("b", 0), moment("a", 525), moment("a", 610)]
    scores = score_query(results, JUDGED)
    assert scores["recall"] == 1.0 and scores["mrr"] == 0.5
    assert scores["minute_recall"] == 1.0 and scores["minute_mrr"] == 0.25  # 525-570 is 30 s off: not covered
    assert scores["hit"] == 1.0
    far = score_query([moment("a", 300)], JUDGED)
    assert far["minute_recall"] == 0.0 and far["hit"] == 0.0 and far["recall"] == 0.5 and far["mrr"] == 1.0
    near = score_query([moment("a", 480, 530)], JUDGED)  # 70 s before the minute: a hit at ±90 s only
    assert near["minute_recall"] == 0.0 and near["hit"] == 1.0


def test_only_the_first_ten_results_count():
    results = [moment("x", 0)] * 10 + [moment("a", 600)]
    assert score_query(results, JUDGED) == {"recall": 0.0, "mrr": 0.0, "minute_recall": 0.0, "minute_mrr": 0.0,
                                            "hit": 0.0}


def test_episode_level_results_and_means():
    episode_level = score_query([moment("a", None, None)], JUDGED, minute_level=False)
    assert episode_level == {"recall": 0.5, "mrr": 1.0}
    no_minutes = score_query([moment("a", 600)], {**JUDGED, "minutes": {}})
    assert set(no_minutes) == {"recall", "mrr"}
    means = mean_scores([episode_level, {"recall": 1.0, "mrr": 0.0, "minute_recall": 0.5, "minute_mrr": 1.0,
                                         "hit": 1.0}])
    assert means["queries"] == 2 and means["recall"] == 0.75 and means["mrr"] == 0.5
    assert means["minute_recall"] == 0.5 and means["hit"] == 1.0  # over the one query that has it
    assert mean_scores([episode_level])["hit"] is None


def test_rrf():
    assert rrf([["a", "b", "c"], ["b", "c"]]) == ["b", "c", "a"]
    assert rrf([["a", "b"], ["b", "a"]]) == ["a", "b"]  # a tie keeps first-seen order
    assert rrf([[], []]) == []


def test_by_set_puts_held_out_first():
    queries = [{"set": "tuning"}, {"set": "heldout"}, {"set": "tuning"}]
    assert list(by_set(queries, [{"n": 1}, {"n": 2}, {"n": 3}]).items()) == [
        ("heldout", [{"n": 2}]), ("tuning", [{"n": 1}, {"n": 3}])]


def test_split_rule_is_the_recorded_one():
    queries = json.loads((BENCH / "queries_datatalks.json").read_text())["queries"]
    assert [q["set"] for q in queries] == [query_set(q["query"]) for q in queries]
    counts = {s: sum(q["set"] == s for q in queries) for s in ("tuning", "heldout")}
    assert counts == {"tuning": 19, "heldout": 18}


def feed_guids(folder: str) -> set[str]:
    feed = SHARED / "corpus" / folder / "feed.xml"
    if not feed.exists():
        pytest.skip("the test corpora are not here")
    return set(re.findall(r"<guid[^>]*>([^<]+)</guid>", feed.read_text()))


@pytest.mark.parametrize("name", sorted(QUERY_FILES))
def test_query_files_are_well_formed(name):
    data = json.loads((BENCH / name).read_text())
    assert "never" in data["about"].lower()
    guids = feed_guids(QUERY_FILES[name])
    texts = [q["query"] for q in data["queries"]]
    assert len(set(texts)) == len(texts)
    for q in data["queries"]:
        assert q["set"] in ("tuning", "heldout") and q["episodes"] and q["grep"]
        assert set(q["episodes"]) <= guids, q["query"]
        assert set(q.get("minutes", {})) <= set(q["episodes"]), q["query"]
        re.compile(q["grep"])
        if name != "queries_datatalks.json":
            assert q["set"] == "heldout" and q["kind"] in ("named", "topical", "moment") and q["minutes"]


def test_new_questions_are_new():
    tuned = {q["query"] for q in json.loads((BENCH / "queries_datatalks.json").read_text())["queries"]}
    new = [q["query"] for name in ("queries_heldout_datatalks.json", "queries_heldout_twiml.json")
           for q in json.loads((BENCH / name).read_text())["queries"]]
    assert len(new) >= 40 and not tuned & set(new)


def test_baselines_on_a_tiny_archive():
    from search_helpers import add_episode, add_segments, add_show, index_all
    from search_quality import Baselines, evaluate, summarise

    from archive.db import memory_db
    from fakes import FakeEmbedder
    from archive.records import Segment

    db = memory_db()
    show = add_show(db, "Show")
    db["episodes"].insert({"show_id": show, "guid": "e1", "title": "Bees and flowers",
                           "description": "how honey bees find flowers"})
    e2 = add_episode(db, show, "e2", "Rockets")
    e1 = db.execute("SELECT id FROM episodes WHERE guid = 'e1'").fetchone()[0]
    add_segments(db, e1, [Segment(start=i * 20.0, end=i * 20.0 + 20, text=f"words about gardens number {i}")
                          for i in range(20)] + [Segment(start=600, end=630, text="the waggle dance of honey bees")])
    add_segments(db, e2, [Segment(start=0, end=30, text="rocket engines burn fuel"),
                          Segment(start=30, end=60, text="orbits around the earth")])
    embedder = FakeEmbedder()
    index_all(db, embedder)
    baselines = Baselines(db, embedder)
    runners = baselines.runners()
    assert len(runners) == 5
    assert [m.episode_guid for m in baselines.episode_bm25("honey bees")] == ["e1"]
    assert baselines.episode_semantic("rockets")[0].episode_guid == "e2"
    fused = baselines.passage_rrf("honey bees dance")
    assert fused[0].episode_guid == "e1" and fused[0].start <= 600 < fused[0].end + 1
    queries = [{"query": "waggle dance of honey bees", "set": "heldout", "episodes": ["e1"], "minutes": {"e1": [10]}},
               {"query": "rocket fuel", "set": "tuning", "episodes": ["e2"], "minutes": {"e2": [0]}}]
    table = summarise(queries, evaluate(queries, runners))
    assert list(table) == ["heldout", "tuning"]
    for name, row in table["heldout"].items():
        assert row["queries"] == 1 and row["recall"] == 1.0, name
        assert (row["hit"] is None) == name.endswith("[ep]")
    assert table["heldout"]["baseline BM25 passages"]["hit"] == 1.0


def test_search_quality_help():
    done = subprocess.run([sys.executable, str(BENCH / "search_quality.py"), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--corpus" in done.stdout and "--modes-only" in done.stdout and "held-out" in done.stdout


def test_match_boundaries_pairs_each_boundary_once():
    from metrics import boundary_scores, match_boundaries, prf

    assert match_boundaries([100, 110], [105]) == 1  # two guesses near one human boundary: one match
    assert match_boundaries([105], [100, 110]) == 1
    assert match_boundaries([0, 100], [60, 161]) == 1  # 60 s off is within the tolerance, 61 s is not
    assert match_boundaries([100], [161]) == 0 and match_boundaries([100], [160]) == 1
    assert match_boundaries([50, 120], [100, 170]) == 2  # greedy on the sorted lists finds the full pairing
    assert match_boundaries([], [10]) == 0 and match_boundaries([10], []) == 0
    assert prf(0, 0, 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    scores = boundary_scores([([100, 300], [100, 200, 300, 400]), ([500], [900])])
    assert (scores["matched"], scores["predicted"], scores["reference"]) == (2, 3, 5)
    assert scores["micro"]["precision"] == 2 / 3 and scores["micro"]["recall"] == 2 / 5
    assert scores["macro"]["precision"] == 0.5 and scores["macro"]["recall"] == 0.25
    assert abs(scores["macro"]["f1"] - (2 * 1 * 0.5 / 1.5) / 2) < 1e-12
