"""The relevance floor (archive/search_relevance.py): does it keep every judged answer, and how many nonsense and
off-topic queries does it leave empty?

    .venv/bin/python bench/search_floor.py                      # DataTalks.Club (bench/out/datatalks.db)
    .venv/bin/python bench/search_floor.py --corpus all         # and TWIML (bench/out/twiml.db)
    .venv/bin/python bench/search_floor.py --calibrate          # choose the floor, then report with it
    .venv/bin/python bench/search_floor.py --json bench/out/search_floor.json

For each mode (keyword, semantic, hybrid) every judged question of bench/search_quality.py's files runs twice,
without the floor (`SearchTuning.floor_query`/`floor_moment` None) and with it, at limit 10; the measures of
bench/metrics.py are reported per set, and every judged answer found without the floor but not with it is listed
(an episode that left the first 10, a judged minute no longer covered). The 30 queries of
bench/queries_offtopic.json (written before the floor was calibrated; split tuning / held-out by a hash of their
text) run the same way: how many return nothing, and, in keyword mode, how many have no moment with all their
words (those show some-words moments, said so).

--calibrate chooses the two thresholds from the tuning halves only (judged tuning questions, off-topic tuning
queries), on the evidence the search gathers without the floor:
* floor_moment: the lowest cosine of any judged-relevant result in the first 10 of a judged tuning question found
  by meaning alone, less a margin (0.02), rounded down: as high as keeps every such answer; floor_some_words the
  same for results with some (not all) of the query's words;
* floor_query: midway between the best candidate cosine of the worst judged tuning question (with no all-words
  candidate) and that of the best off-topic tuning query, rounded down (when they do not overlap; else the judged
  one less the margin): empties no judged tuning question, and leaves as wide a gap on each side as there is.
Held-out figures are measured, not tuned.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from archive.query_embedding import get_embedder  # noqa: E402
from archive.search import DEFAULT_TUNING, search  # noqa: E402
from metrics import K, by_set, judged_minutes, mean_scores, score_query  # noqa: E402
from search_quality import CORPORA, MODES, load_queries  # noqa: E402

OFFTOPIC = ROOT / "bench" / "queries_offtopic.json"
MARGIN = 0.02
NO_FLOOR = replace(DEFAULT_TUNING, floor_query=None, floor_moment=None, floor_some_words=None, floor_worded=None)


def run(db, embedder, text: str, mode: str, tuning):
    return search(db, text, mode=mode, limit=K, embedder=embedder, tuning=tuning)


def relevant(result, judged: dict) -> bool:
    return result.episode_guid in judged["episodes"]


def lost_answers(before, after, judged: dict) -> list[str]:
    """Judged answers in the first K without the floor and not with it."""
    lost = []
    episodes_after = {r.episode_guid for r in after[:K]}
    for guid in sorted({r.episode_guid for r in before[:K] if relevant(r, judged)} - episodes_after):
        lost.append(f"episode {guid}")
    from metrics import covers

    for guid, minute in judged_minutes(judged):
        had = any(r.episode_guid == guid and covers(r, minute) for r in before[:K])
        has = any(r.episode_guid == guid and covers(r, minute) for r in after[:K])
        if had and not has:
            lost.append(f"minute {guid}@{minute}")
    return lost


def round_down(value: float) -> float:
    return math.floor(value * 100) / 100


def calibrate(corpora: dict, embedder, offtopic: list[dict]) -> tuple[dict, dict]:
    """({floor_query, floor_moment, floor_some_words}, notes) from the tuning halves (see the module notes)."""
    moment_cosines, some_cosines, query_cosines, notes = [], [], [], {}
    for key, (db, queries) in corpora.items():
        for judged in (q for q in queries if q["set"] == "tuning"):
            for mode in ("semantic", "hybrid"):
                results = run(db, embedder, judged["query"], mode, NO_FLOOR)
                if not any(e.all_words for e in results.evidence) and results.best_cosine is not None:
                    query_cosines.append((results.best_cosine, f"{key} {mode}: {judged['query']}"))
                for result, evidence in zip(results, results.evidence):
                    if relevant(result, judged) and not evidence.all_words and evidence.cosine is not None:
                        into = some_cosines if evidence.all_words is False else moment_cosines
                        into.append((evidence.cosine, f"{key} {mode}: {judged['query']}"))
    low_moment, low_some, low_query = min(moment_cosines), min(some_cosines), min(query_cosines)
    notes["lowest relevant cosine, by meaning alone (tuning)"] = [round(low_moment[0], 4), low_moment[1]]
    notes["lowest relevant cosine, some of the words (tuning)"] = [round(low_some[0], 4), low_some[1]]
    notes["lowest best cosine of a judged tuning question"] = [round(low_query[0], 4), low_query[1]]
    off = []
    for key, (db, _) in corpora.items():
        for item in (q for q in offtopic if q["set"] == "tuning"):
            results = run(db, embedder, item["query"], "semantic", NO_FLOOR)
            off.append((round(results.best_cosine or 0.0, 4), key, item["query"]))
    notes["off-topic tuning best cosines"] = sorted(off, reverse=True)
    worst_off = max(off)[0] if off else None
    if worst_off is not None and worst_off < low_query[0]:
        floor_query = round_down((worst_off + low_query[0]) / 2)
    else:
        floor_query = round_down(low_query[0] - MARGIN)
    floors = {"floor_query": floor_query, "floor_moment": round_down(low_moment[0] - MARGIN),
              "floor_some_words": round_down(low_some[0] - MARGIN)}
    return floors, notes


def evaluate(corpora: dict, embedder, offtopic: list[dict], tuning) -> dict:
    report = {"floor_query": tuning.floor_query, "floor_moment": tuning.floor_moment,
              "floor_some_words": tuning.floor_some_words, "floor_worded": tuning.floor_worded, "corpora": {}}
    for key, (db, queries) in corpora.items():
        out = report["corpora"][key] = {}
        for mode in MODES:
            rows_before, rows_after, lost = [], [], []
            for judged in queries:
                before = run(db, embedder, judged["query"], mode, NO_FLOOR)
                after = run(db, embedder, judged["query"], mode, tuning)
                rows_before.append(score_query(before, judged))
                rows_after.append(score_query(after, judged))
                lost += [f"[{judged['set']}] {judged['query']}: {item}" for item in lost_answers(before, after, judged)]
            sets = {}
            for name, rows in by_set(queries, rows_before).items():
                sets[name] = {"before": mean_scores(rows)}
            for name, rows in by_set(queries, rows_after).items():
                sets[name]["after"] = mean_scores(rows)
            empty = {"tuning": [0, 0], "heldout": [0, 0]}
            no_all_words = {"tuning": 0, "heldout": 0}
            empty_before = {"tuning": 0, "heldout": 0}
            shown = []
            for item in offtopic:
                results = run(db, embedder, item["query"], mode, tuning)
                before = run(db, embedder, item["query"], mode, NO_FLOOR)
                empty[item["set"]][1] += 1
                empty[item["set"]][0] += not results
                empty_before[item["set"]] += not before
                no_all_words[item["set"]] += not any(e.all_words for e in results.evidence)
                if results:
                    shown.append(f"[{item['set']}] {item['query']}: {len(results)} "
                                 f"({results.some_words} with some words only)")
            out[mode] = {"judged": sets, "lost": lost, "offtopic_empty": empty, "offtopic_empty_before": empty_before,
                         "offtopic_no_all_words": no_all_words, "offtopic_not_empty": shown}
    return report


def print_report(report: dict) -> None:
    print(f"\nfloor_query {report['floor_query']}, floor_moment {report['floor_moment']}, "
          f"floor_some_words {report['floor_some_words']}, floor_worded {report['floor_worded']}")
    for key, modes in report["corpora"].items():
        print(f"\n== {CORPORA[key].name}")
        for mode, row in modes.items():
            print(f"  {mode}")
            for name, pair in row["judged"].items():
                b, a = pair["before"], pair["after"]
                cells = "  ".join(f"{m} {b[m]:.3f}->{a[m]:.3f}" for m in ("recall", "mrr", "minute_recall",
                                                                          "minute_mrr", "hit")
                                  if b.get(m) is not None)
                print(f"    judged {name:8} ({b['queries']:2} q): {cells}")
            print(f"    judged answers lost: {len(row['lost'])}")
            for item in row["lost"]:
                print(f"      {item}")
            for part in ("tuning", "heldout"):
                done, total = row["offtopic_empty"][part]
                print(f"    off-topic {part:8}: {done}/{total} empty (before the floor: "
                      f"{row['offtopic_empty_before'][part]}/{total}); "
                      f"no all-words moment: {row['offtopic_no_all_words'][part]}/{total}")
            for item in row["offtopic_not_empty"]:
                print(f"      shown: {item}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("datatalks", "twiml", "all"), default="datatalks")
    parser.add_argument("--calibrate", action="store_true", help="choose the floor on the tuning halves first")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report to PATH as JSON")
    args = parser.parse_args(argv)
    keys = ("datatalks", "twiml") if args.corpus == "all" else (args.corpus,)
    embedder = get_embedder()
    corpora = {}
    for key in keys:
        corpus = CORPORA[key]
        db = corpus.build(corpus.archive, embedder, first=corpus.judged_guids(), log=lambda *a, **k: None)
        corpora[key] = (db, load_queries(corpus.files))
    offtopic = json.loads(OFFTOPIC.read_text())["queries"]
    tuning = DEFAULT_TUNING
    if args.calibrate:
        floors, notes = calibrate(corpora, embedder, offtopic)
        print(json.dumps(notes))
        print(f"chosen: {floors}")
        tuning = replace(DEFAULT_TUNING, **floors)
    report = evaluate(corpora, embedder, offtopic, tuning)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
