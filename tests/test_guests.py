import html
import json
import re

import pytest
from conftest import SHARED

from archive.people import normalise_name, slugify, upsert_person
from archive.records import PersonRef, Segment
from ingest.guests import (
    find_guests, identify_host, looks_like_name, name_before_colon, names_from_notes, names_from_title, save_guests,
)

DATATALKS = SHARED / "corpus" / "datatalksclub_podcast"
TWIML = SHARED / "corpus" / "twiml_whisper_transcripts"


# ---- names and people ------------------------------------------------------------------------------------------

def test_normalise_name_merges_spellings():
    keys = {normalise_name(n) for n in
            ["Mohamed Elgendy", "mohamed  elgendy", "Dr. Mohamed Elgendy", " Mohamed\u00a0Elgendy ", "MOHAMED ELGENDY"]}
    assert keys == {"mohamed elgendy"}
    assert normalise_name("José María Sánchez") == "jose maria sanchez"
    assert normalise_name("Mısra Turp") == normalise_name("Misra Turp")
    assert normalise_name("Prof. Jane O'Neil, PhD") == "jane oneil"
    assert normalise_name("Tanya Berger-Wolf") == "tanya berger wolf"
    assert slugify("Dr. José Núñez") == "jose-nunez"


def test_upsert_person_keeps_one_record(db):
    first = upsert_person(db, "mohamed elgendy")
    assert upsert_person(db, "Dr. Mohamed Elgendy", href="https://example.com/me") == first
    assert upsert_person(db, "Mohamed  Elgendy", img="https://example.com/me.jpg") == first
    row = db["people"].get(first)
    assert (row["name"], row["slug"], row["href"], row["img"]) == (
        "Mohamed Elgendy", "mohamed-elgendy", "https://example.com/me", "https://example.com/me.jpg")
    assert db["people"].count == 1
    with pytest.raises(ValueError):
        upsert_person(db, " -- ")


def test_slugs_stay_unique(db):
    db["people"].insert({"name": "Taken", "name_key": "something else", "slug": "jane-doe"})
    person = upsert_person(db, "Jane Doe")
    assert db["people"].get(person)["slug"] == "jane-doe-2"


@pytest.mark.parametrize("text,expected", [
    ("Mohamed Elgendy", True), ("J. M. Hernández Lobato", True), ("Blaise Aguera y Arcas", True),
    ("Quoc Le", True), ("D. Sculley", True), ("CJ Jenkins", True), ("Mehdi OUAZZA", True),
    ("Deep Learning", False), ("Online Courses", False), ("Structured Data", False), ("NLP", False),
    ("HelloVera", False), ("AWS GPU", False), ("Jakob", False),
])
def test_looks_like_name(text, expected):
    assert looks_like_name(text) is expected


# ---- titles and notes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("title,names", [
    ("Episode 70: Machine Learning Testing with Mohamed Elgendy", ["Mohamed Elgendy"]),
    ("Engineering Practical Machine Learning Systems with Xavier Amatriain - #3", ["Xavier Amatriain"]),
    ("Scaling Machine Learning on Graphs at LinkedIn with Hema Raghavan and Scott Meyer - TWiML Talk #236",
     ["Hema Raghavan", "Scott Meyer"]),
    ("Deep Learning with Structured Data w/ Mark Ryan - #301", ["Mark Ryan"]),
    ("Understanding Collective Insect Communication with ML, w/ Orit Peleg - 590", ["Orit Peleg"]),
    ("Invariance, Geometry and Deep Neural Networks with Pavan Turaga - #386 (Video)", ["Pavan Turaga"]),
    ("Jennifer Prendki Interview - Agile Machine Learning - TWiML Talk #46", ["Jennifer Prendki"]),
    ("Data Debt in Machine Learning with D. Sculley - #574", ["D. Sculley"]),
    ("Live from TWIMLcon! Operationalizing Responsible AI - #310", []),
    ("AI-Powered Customer Support with HelloVera - #18", []),
    ("Build a Personal Brand: Publish on LinkedIn/Medium, Grow Audience, Monetize with Online Courses", []),
    (None, []),
])
def test_names_from_title(title, names):
    assert names_from_title(title) == names


def test_twiml_titles_nearly_all_give_a_guest():
    feed = (TWIML / "feed.xml").read_text(encoding="utf-8")
    titles = [html.unescape(t) for t in re.findall(r"<item>\s*<title>(.*?)</title>", feed, re.S)]
    found = [find_guests(title, None, [], []) for title in titles]
    assert sum(1 for f in found if f) / len(titles) > 0.9
    names = {p.name for people in found for p in people}
    assert {"Clare Corthell", "Xavier Amatriain", "Joshua Bloom"} <= names
    assert not names & {"Deep Learning", "Structured Data", "Cambrian Intelligence", "Online Courses"}


def test_name_before_colon_needs_confirming():
    assert name_before_colon("Mohamed Elgendy: Testing ML") == "Mohamed Elgendy"
    assert find_guests("Mohamed Elgendy: Testing ML", "", [], []) == []
    confirmed = find_guests("Mohamed Elgendy: Testing ML", "", [], [
        Segment(0, 5, "Welcome! What do you do?", "James"), Segment(5, 60, "I test models " * 20, "Mohamed Elgendy")])
    assert [(p.name, p.source) for p in confirmed] == [("Mohamed Elgendy", "title")]


def test_names_from_notes():
    assert names_from_notes("<p>How? In this episode, Jakob Graff — Director of Data Science at diconium — walks"
                            "</p>") == ["Jakob Graff"]
    assert names_from_notes("In this episode Tanya Berger-Wolf, a computational ecologist, explains") == [
        "Tanya Berger-Wolf"]
    assert names_from_notes("In this episode, Dr. Adam Sroka — Head of ML") == ["Dr. Adam Sroka"]
    assert names_from_notes("Elena Samuylova, Co-founder & CEO of Evidently AI, joins to answer that.") == []
    assert names_from_notes("Today my guest is Clare Corthell. She talks") == ["Clare Corthell"]
    assert names_from_notes("In this episode we cover Deep Learning, and more.") == []


# ---- the whole search ----------------------------------------------------------------------------------------

def datatalks_items() -> dict[str, dict]:
    feed = (DATATALKS / "feed.xml").read_text(encoding="utf-8")
    items = {}
    for item in re.findall(r"<item>(.*?)</item>", feed, re.S):
        guid = re.search(r"<guid[^>]*>(.*?)</guid>", item).group(1)
        notes = re.search(r"<!\[CDATA\[(.*?)\]\]>", item, re.S)
        items[guid[len("dtc-"):]] = {"title": html.unescape(re.search(r"<title>(.*?)</title>", item).group(1)),
                                      "notes": notes.group(1) if notes else ""}
    return items


def transcript_segments(slug: str) -> list[Segment]:
    data = json.loads((DATATALKS / "transcripts" / f"{slug}.json").read_text())
    return [Segment(s["startTime"], s.get("endTime", s["startTime"]), s["body"], s.get("speaker"))
            for s in data["segments"]]


@pytest.mark.parametrize("slug,guest", [
    ("ab-testing-and-product-experimentation", "Jakob Graff"),
    ("building-ai-digital-health-startups", "Maria-Liisa Bruckert"),
    ("ml-engineering-kpis-and-metrics-strategy", "Adam Sroka"),
    ("postdoc-to-data-science-lead-career-transition", "CJ Jenkins"),
    ("scaling-data-engineering-teams-self-service-platforms", "Mehdi OUAZZA"),
    ("from-math-graduate-to-data-analytics", "Juan Pablo Murillo"),
    ("developer-personal-brand-learn-in-public", "Shawn Swyx Wang"),
])
def test_datatalks_guests(slug, guest):
    item = datatalks_items()[slug]
    segments = transcript_segments(slug)
    guests = find_guests(item["title"], item["notes"], [], segments)
    assert [normalise_name(p.name) for p in guests] == [normalise_name(guest)]
    assert identify_host(segments) == "Alexey"


def test_datatalks_first_name_speaker_is_matched_to_the_notes():
    segments = [Segment(0, 10, "Welcome. Can you tell us about your career?", "Alexey"),
                Segment(10, 200, "I studied economics and then moved to analytics. " * 10, "Jakob")]
    notes = "<p>Our guest Jakob Graff leads data science at diconium.</p>"
    guests = find_guests("A/B Testing", notes, [], segments)
    assert [(p.name, p.source) for p in guests] == [("Jakob Graff", "transcript")]
    assert find_guests("A/B Testing", "", [], segments) == []  # a lone first name is not enough


def test_host_from_feed_and_from_questions():
    segments = [Segment(0, 5, "Hello. Why ML testing?", "James"), Segment(5, 50, "Because models fail. " * 5, "Mo"),
                Segment(50, 55, "And then?", "James"), Segment(55, 90, "We built a platform. " * 5, "Mo")]
    assert identify_host(segments) == "James"
    assert identify_host(segments, ["Mo Elgendy"]) == "Mo"
    assert identify_host([Segment(0, 5, "Just me?", "James")]) is None
    assert identify_host([Segment(0, 5, "No labels.")]) is None


def test_datacast_person_tags():
    feed_people = [{"name": "James Le", "role": "host", "href": "https://jameskle.com/", "img": None},
                   {"name": "Mohamed Elgendy", "role": "guest", "href": None, "img": None}]
    guests = find_guests("Episode 70: Machine Learning Testing with Mohamed Elgendy",
                         "<p>Mohamed Elgendy is a seasoned AI expert</p>", feed_people, [])
    assert [(p.name, p.source, p.role) for p in guests] == [("Mohamed Elgendy", "feed", "guest")]


def test_save_guests_replaces_and_keeps_hosts(db):
    show = db["shows"].insert({"feed_url": "file:///feed.xml"}).last_pk
    one = db["episodes"].insert({"show_id": show, "guid": "g1"}).last_pk
    two = db["episodes"].insert({"show_id": show, "guid": "g2"}).last_pk
    db["feed_people"].insert({"episode_id": one, "name": "Pat Producer", "role": "producer"})
    host = PersonRef("James Le", role="host", href="https://jameskle.com/")
    save_guests(db, one, [host, PersonRef("Someone Wrong", source="title")])
    save_guests(db, one, [host, PersonRef("Mohamed Elgendy", source="feed")])
    save_guests(db, two, [host, PersonRef("Dr. Mohamed Elgendy", source="notes")])
    rows = list(db.query("""SELECT e.guid, p.name, ep.role, ep.source FROM episode_people ep
                            JOIN people p ON p.id = ep.person_id JOIN episodes e ON e.id = ep.episode_id
                            ORDER BY e.guid, ep.role, p.name"""))
    assert [(r["guid"], r["name"], r["role"], r["source"]) for r in rows] == [
        ("g1", "Mohamed Elgendy", "guest", "feed"), ("g1", "James Le", "host", "feed"),
        ("g1", "Pat Producer", "producer", "feed"),
        ("g2", "Mohamed Elgendy", "guest", "notes"), ("g2", "James Le", "host", "feed")]
    assert db["people"].count == 4  # Someone Wrong stays a person record, but with no episode
