"""Measures for bench/search_quality.py, kept free of the archive so they can be unit-tested
(tests/test_bench_metrics.py).

A result is anything with `episode_guid`, `start` and `end` (seconds; `start` None for an episode-level result,
which has no moment). A judgement is one query of a bench/queries_*.json file: `episodes` (the relevant guids),
`minutes` (guid -> judged minutes, optional) and `set` ("tuning" or "heldout").

* episode level: Recall@10 = share of a query's relevant episodes among the episodes of its first 10 results;
  MRR = 1 / rank of the first result from a relevant episode.
* minute level (queries with judged minutes): a result covers a judged minute when it comes from that episode and
  its time span, widened by 30 s on each side, overlaps the minute. Recall@10 = share of judged minutes covered by
  the first 10 results; MRR = 1 / rank of the first result that covers one.
* Hit@10 (moments, the issue's "right passage ±90 s"): 1 when any of the first 10 results covers a judged minute
  widened by 90 s on each side, else 0.

Episode-level results (start None) get no minute-level figures: the mean of a measure is over the queries that
have it, and None when none has.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

K = 10
TOLERANCE = 30.0  # seconds either side of a judged minute for minute Recall@10 and MRR
HIT_TOLERANCE = 90.0  # seconds either side for Hit@10 of moments
RRF_K = 60
SETS = ("heldout", "tuning")  # reporting order: held-out first
METRICS = ("recall", "mrr", "minute_recall", "minute_mrr", "hit")


def query_set(text: str) -> str:
    """The split rule of bench/queries_datatalks.json: "tuning" when the first 8 hex digits of the SHA-256 of the
    query's UTF-8 text, read as a number, are even, else "heldout". Looks at nothing but the text."""
    return "tuning" if int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 2 == 0 else "heldout"


def covers(result, minute: int, tolerance: float = TOLERANCE) -> bool:
    """Whether `result`'s time span, widened by `tolerance` seconds each side, overlaps judged `minute`."""
    if getattr(result, "start", None) is None:
        return False
    low, high = minute * 60 - tolerance, (minute + 1) * 60 + tolerance
    end = result.end if result.end is not None else result.start
    return result.start < high and max(end, result.start) > low


def judged_minutes(judged: dict) -> set[tuple[str, int]]:
    return {(guid, m) for guid, ms in judged.get("minutes", {}).items() for m in ms}


def score_query(results, judged: dict, k: int = K, minute_level: bool = True) -> dict:
    """The measures of one query's ranked `results` against its judgement (see the module notes)."""
    relevant = set(judged["episodes"])
    minutes = judged_minutes(judged)
    top = list(results)[:k]
    found = {r.episode_guid for r in top} & relevant
    first = next((rank for rank, r in enumerate(top, 1) if r.episode_guid in relevant), None)
    scores = {"recall": len(found) / len(relevant) if relevant else 0.0, "mrr": 1 / first if first else 0.0}
    if minutes and minute_level:
        def covering(r, tolerance):
            return any(r.episode_guid == g and covers(r, m, tolerance) for g, m in minutes)

        covered = {(g, m) for g, m in minutes for r in top if r.episode_guid == g and covers(r, m)}
        first_minute = next((rank for rank, r in enumerate(top, 1) if covering(r, TOLERANCE)), None)
        scores["minute_recall"] = len(covered) / len(minutes)
        scores["minute_mrr"] = 1 / first_minute if first_minute else 0.0
        scores["hit"] = 1.0 if any(covering(r, HIT_TOLERANCE) for r in top) else 0.0
    return scores


def mean_scores(per_query: Iterable[dict]) -> dict:
    """Each measure's mean over the queries that have it (None when none has), and `queries`: how many."""
    rows = list(per_query)
    means: dict = {"queries": len(rows)}
    for metric in METRICS:
        values = [row[metric] for row in rows if metric in row]
        means[metric] = sum(values) / len(values) if values else None
    return means


def rrf(lists: Iterable[list], k: int = RRF_K) -> list:
    """Reciprocal rank fusion: keys ordered by the sum over `lists` of 1 / (k + rank), rank from 1; ties keep the
    order in which keys were first seen (list by list, best first)."""
    totals: dict = {}
    for ranked in lists:
        for rank, key in enumerate(ranked, 1):
            totals[key] = totals.get(key, 0.0) + 1.0 / (k + rank)
    order = {key: i for i, key in enumerate(totals)}
    return sorted(totals, key=lambda key: (-totals[key], order[key]))


def by_set(queries: list[dict], per_query: list[dict]) -> dict[str, list[dict]]:
    """Per-query scores grouped by their query's `set`, in SETS order (empty sets left out)."""
    groups: dict[str, list[dict]] = {name: [] for name in SETS}
    for judged, scores in zip(queries, per_query, strict=True):
        groups.setdefault(judged["set"], []).append(scores)
    return {name: rows for name, rows in groups.items() if rows}


# ---- chapter boundaries (bench/chapters_quality.py) ------------------------------------------------------------

BOUNDARY_TOLERANCE = 60.0  # seconds either side of a human chapter boundary


def match_boundaries(predicted: Iterable[float], reference: Iterable[float],
                     tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """How many predicted boundaries can be paired with a reference boundary within `tolerance` seconds, each
    boundary on either side used at most once: the largest such pairing (on a line, the greedy sweep over both
    sorted lists finds it)."""
    pred, ref = sorted(predicted), sorted(reference)
    i = j = matched = 0
    while i < len(pred) and j < len(ref):
        if pred[i] < ref[j] - tolerance:
            i += 1
        elif ref[j] < pred[i] - tolerance:
            j += 1
        else:
            matched += 1
            i += 1
            j += 1
    return matched


def prf(matched: int, predicted: int, reference: int) -> dict:
    """Precision, recall and F1 from counts; a share with nothing to divide by is 0."""
    precision = matched / predicted if predicted else 0.0
    recall = matched / reference if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def boundary_scores(episodes: Iterable[tuple[list[float], list[float]]],
                    tolerance: float = BOUNDARY_TOLERANCE) -> dict:
    """Micro (pooled counts) and macro (mean of per-episode figures) precision, recall and F1 over
    (predicted, reference) boundary lists, one pair per episode."""
    rows = [(match_boundaries(p, r, tolerance), len(p), len(r)) for p, r in episodes]
    totals = [sum(column) for column in zip(*rows)] if rows else [0, 0, 0]
    per_episode = [prf(*row) for row in rows]
    macro = {key: sum(s[key] for s in per_episode) / len(per_episode) if per_episode else 0.0
             for key in ("precision", "recall", "f1")}
    return {"episodes": len(rows), "matched": totals[0], "predicted": totals[1], "reference": totals[2],
            "micro": prf(*totals), "macro": macro}
