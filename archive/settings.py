"""Every PODARCHIVE_* setting in one place: its environment variable, default and meaning.

`Settings.from_env()` reads each variable once, and each setting has one variable. The edges read it (the CLI for
its options' defaults, the web app factory, the worker's options); the library takes the values as parameters.
Unset or empty variables leave the default. The site's settings (those with a `site` key, the name
`app.config` knows them by) are parsed as JSON where they can be, like Flask's `from_prefixed_env`
(`PODARCHIVE_PER_PAGE=50` is the number 50, `PODARCHIVE_TRUSTED_HOSTS='["a.example"]'` a list); a value that is
not JSON is kept as text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import SettingError

PREFIX = "PODARCHIVE_"


def _text(value: str, variable: str) -> str:
    return value


def _path(value: str, variable: str) -> Path:
    return Path(value)


def _number(value: str, variable: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingError(f"{variable} must be a number, not {value!r}") from None


_TRUE, _FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def _flag(value: str, variable: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise SettingError(f"{variable} must be true or false (1 or 0), not {value!r}")


def _json_or_text(value: str, variable: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class Variable:
    """How one setting is read: its environment variable, its parser, what it means and, for the site's
    settings, its `app.config` key."""

    name: str
    help: str
    parse: Callable[[str, str], Any]
    site: str | None = None


def setting(name: str, default: Any, help: str, *, parse: Callable[[str, str], Any] = _text, site: str | None = None):
    return field(default=default, metadata={"variable": Variable(PREFIX + name, help, parse, site)})


def site_setting(name: str, default: Any, help: str):
    return setting(name, default, help, parse=_json_or_text, site=name)


@dataclass(frozen=True)
class Settings:
    # the archive: every command, the site and the worker
    db: str = setting("DB", "podarchive.db", "Path of the archive's SQLite file, for every command and the site.",
                      site="DATABASE")
    media_dir: Path = setting("MEDIA_DIR", Path("media"),
                              "Where audio is kept: the pipeline's downloads and producers' uploads.", parse=_path)
    embedding_model: str = setting(
        "EMBEDDING_MODEL", "all-MiniLM-L6-v2",
        "sentence-transformers model (a name or a folder) for the index and search; the site's EMBEDDER, which "
        "may also be an Embedder object (archive.embeddings; tests and benches pass their fake to create_app). "
        "Default: the bundled all-MiniLM-L6-v2, loaded on first use.",
        site="EMBEDDER")
    embedding_backend: str = setting(
        "EMBEDDING_BACKEND", "openvino",
        "How the index embeds on CPU: openvino or onnx (the model's transformer exported once to ONNX and run by "
        "OpenVINO or ONNX Runtime; the same vectors as torch, checked when loaded, else torch is used) or torch.")
    model_cache: Path | None = setting(
        "MODEL_CACHE", None,
        "Folder for the embedding model's ONNX export (made once, offline, from the local model). Default: "
        "~/.cache/podarchive/models.", parse=_path)
    # takeaways written by an OpenAI-compatible endpoint (ingest/takeaways.py): off unless URL and model are set
    llm_url: str | None = setting("LLM_URL", None, "An OpenAI-compatible endpoint (/v1/chat/completions).")
    llm_model: str | None = setting("LLM_MODEL", None, "The model the endpoint runs.")
    llm_api_key: str | None = setting("LLM_API_KEY", None, "The endpoint's API key, if it asks for one.")
    # ingest and index
    lock_timeout: float = setting("LOCK_TIMEOUT", 3600.0,
                                  "Seconds ingest and index wait while another writer holds the archive (0: fail "
                                  "at once).", parse=_number)
    allow_private_addresses: bool = setting("ALLOW_PRIVATE_ADDRESSES", False,
                                            "Let feeds lead to loopback, private and link-local addresses.",
                                            parse=_flag)
    max_feed_mb: float = setting("MAX_FEED_MB", 20, "Refuse feeds and OPML lists larger than this (MB, decoded).",
                                 parse=_number)
    max_transcript_mb: float = setting("MAX_TRANSCRIPT_MB", 10, "Refuse larger transcript files (MB, decoded).",
                                       parse=_number)
    max_chapters_mb: float = setting("MAX_CHAPTERS_MB", 2, "Refuse larger chapters files (MB, decoded).",
                                     parse=_number)
    fetch_deadline: float = setting("FETCH_DEADLINE", 120,
                                    "Seconds one feed, OPML, transcript or chapters request may take in all, "
                                    "retries and redirects included.", parse=_number)
    diarize: bool = setting("DIARIZE", True,
                            "Find speaker turns in Whisper transcripts and name them from the feed "
                            "(ingest/diarize.py, ingest/speaker_names.py); `ingest` and `work` --diarize/--no-diarize.",
                            parse=_flag)
    # transcription on Celery workers (ingest/distributed.py): off unless a broker is set
    broker: str | None = setting("BROKER", None,
                                 "Redis URL of the Celery broker (and result backend) that `ingest`, `work` and "
                                 "`worker` use to send Whisper work to `podarchive worker` processes; unset: "
                                 "everything runs in the one process.")
    task_time_limit: float = setting("TASK_TIME_LIMIT", 3600,
                                     "Seconds one transcription task (download and Whisper) may run on a worker; "
                                     "a lost worker's task comes back to the queue after 1.25 times this.",
                                     parse=_number)
    # the site (archive/web), under their app.config keys
    secret_key: str | None = site_setting(
        "SECRET_KEY", None,
        "Flask's secret key: it signs the session cookies of producers logged in to the studio. Default: made "
        "once and kept beside the archive in <DATABASE>.secret (mode 0600), so every process serving the "
        "archive shares it; a random one for each process when DATABASE is ':memory:'.")
    session_cookie_secure: bool = site_setting(
        "SESSION_COOKIE_SECURE", False,
        "Send the session cookie over HTTPS only: set it to true when the site is served behind HTTPS.")
    trusted_proxies: int = site_setting(
        "TRUSTED_PROXIES", 0,
        "How many reverse proxies in front of the site add to X-Forwarded-For: the client address that login "
        "throttling counts is then taken from that header (werkzeug's ProxyFix). 0: the connection's address.")
    per_page: int = site_setting("PER_PAGE", 25, "Episodes per page on the site and the default page size of the API.")
    max_per_page: int = site_setting("MAX_PER_PAGE", 100, "Largest per_page the API accepts.")
    search_limit: int = site_setting("SEARCH_LIMIT", 40, "Most moments a search page or API call returns.")
    search_page_results: int = site_setting(
        "SEARCH_PAGE_RESULTS", 20,
        "Moments the search page shows first; its “More moments” link shows up to SEARCH_LIMIT.")
    max_query_chars: int = site_setting(
        "MAX_QUERY_CHARS", 500, "Longest search query; the site shortens longer ones, the API refuses them.")
    feed_limit: int = site_setting("FEED_LIMIT", 1000, "Most episodes a show's re-published feed lists, newest first.")
    base_url: str | None = site_setting(
        "BASE_URL", None,
        "The site's public address, e.g. https://archive.example.org/: every absolute URL the site makes (the "
        "API's URLs, the re-published feeds' links and enclosures, canonical links) starts with it. Default: "
        "the host each request came to.")
    trusted_hosts: list[str] | None = site_setting(
        "TRUSTED_HOSTS", None,
        "Host names the site answers to (Flask's TRUSTED_HOSTS, e.g. [\"archive.example.org\"]); other Host "
        "headers get 400. Set it in production: without it (the default) any Host header is accepted, and "
        "without BASE_URL absolute URLs are built from it.")
    studio_max_upload_mb: float = site_setting(
        "STUDIO_MAX_UPLOAD_MB", 2048,
        "Largest audio file a producer may upload, in MB (MiB). Flask's MAX_CONTENT_LENGTH is set from it (plus "
        "1 MB for a form's other fields), so a larger request is refused with 413 before it is read.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The defaults, with each variable set (and not empty) in `environ` read in its place. Raises
        SettingError for a value that cannot be read."""
        values = {}
        for name, variable in cls.variables():
            text = environ.get(variable.name)
            if text:
                values[name] = variable.parse(text, variable.name)
        return cls(**values)

    @classmethod
    def variables(cls) -> Iterator[tuple[str, Variable]]:
        """(attribute, Variable) for every setting, in declaration order."""
        for item in fields(cls):
            yield item.name, item.metadata["variable"]

    def site_config(self) -> dict[str, Any]:
        """The site's settings under their app.config keys."""
        return {variable.site: getattr(self, name) for name, variable in self.variables() if variable.site}
