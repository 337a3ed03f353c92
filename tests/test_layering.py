"""The layers hold: read from every module's imports (ast), without importing anything.

* archive/ is the store, the search and the site: it never imports ingest/, except the CLI's pipeline commands
  (archive/cli/pipeline.py) inside the functions that run the pipeline.
* The stages run one way, feed -> transcript -> passages -> embeddings -> understanding -> search indexes: a
  stage imports no later stage, and the modules every stage shares import none.
* The web package loads no model library when it is imported, neither itself nor through the archive modules it
  imports.
* The single-machine default needs neither Celery nor Redis: no module imports them when it is imported; only
  ingest/distributed.py imports them, inside its functions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

# The ingest stages in the order they run; each module belongs to one.
STAGES: list[tuple[str, list[str]]] = [
    ("feed", ["ingest.sources", "ingest.opml", "ingest.feed_fetch", "ingest.feed_xml", "ingest.feed_values",
              "ingest.podcast_namespace", "ingest.feed_parse", "ingest.feed_store", "ingest.artwork"]),
    ("transcript", ["ingest.transcript_files", "ingest.audio", "ingest.transcribe", "ingest.vocabulary",
                    "ingest.diarize", "ingest.speaker_names"]),
    ("passages", ["ingest.passages"]),
    ("embeddings", ["ingest.passage_vectors"]),
    ("understanding", ["ingest.understand", "ingest.notes_sections", "ingest.notes_chapters", "ingest.chapters",
                       "ingest.chapter_titles", "ingest.takeaways",
                       "ingest.guests", "ingest.topics"]),
    ("search indexes", ["ingest.search_index"]),
]
SHARED_MODULES = ["ingest", "ingest.http", "ingest.trust", "ingest.progress", "ingest.stages"]  # import no stage
DRIVERS = ["ingest.pipeline", "ingest.index_run", "ingest.worker",
           "ingest.distributed"]  # chain the stages: may import any
MODEL_LIBRARIES = {"torch", "sentence_transformers", "faster_whisper", "ctranslate2", "resemblyzer", "spacy",
                   "transformers"}


@dataclass(frozen=True)
class Import:
    module: str  # the module imported (a submodule where a name imported from a package is one)
    line: int
    module_level: bool  # runs when the importing module is imported (not in a function, not TYPE_CHECKING)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path
                            for package in ("archive", "ingest") for path in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _base(name: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports(name: str) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, module_level) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(name, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in MODULES else base, node.lineno, module_level))
        for child in ast.iter_child_nodes(node):
            inner = module_level and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) \
                and not (isinstance(node, ast.If) and _is_type_checking(node))
            visit(child, inner)

    visit(ast.parse(MODULES[name].read_text(encoding="utf-8")), True)
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def test_archive_never_imports_ingest_and_the_cli_only_inside_commands():
    wrong = []
    for name in MODULES:
        if top(name) != "archive":
            continue
        for imp in imports(name):
            if top(imp.module) == "ingest" and (name != "archive.cli.pipeline" or imp.module_level):
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{imp.line} imports {imp.module}")
    assert not wrong, "\n".join(wrong)


def test_every_ingest_module_has_its_place():
    placed = [m for _, modules in STAGES for m in modules] + SHARED_MODULES + DRIVERS
    ingest = sorted(name for name in MODULES if top(name) == "ingest")
    assert sorted(placed) == ingest, "a new ingest module belongs to a stage, the shared modules or the drivers"


def test_a_stage_imports_no_later_stage():
    position = {m: n for n, (_, modules) in enumerate(STAGES) for m in modules}
    position.update({m: -1 for m in SHARED_MODULES})  # shared modules come before every stage
    wrong = []
    for name, at in position.items():
        for imp in imports(name):
            later = position.get(imp.module, -1)
            if imp.module in position and later > at:
                stage = STAGES[later][0]
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{imp.line} imports {imp.module} ({stage} stage)")
    assert not wrong, "\n".join(wrong)


def module_level_closure(start: str) -> dict[str, list[str]]:
    """Every module that importing `start` imports at once, with one chain of imports that leads to it. The
    archive and ingest modules are read; others are leaves (a package's parents are imported first)."""
    chains: dict[str, list[str]] = {}
    pending = [(start, [start])]
    while pending:
        name, chain = pending.pop()
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        for module in [*parents, name]:
            if module in chains:
                continue
            chains[module] = chain if module == name else [*chain[:-1], module]
            if module in MODULES:
                pending.extend((imp.module, [*chains[module], imp.module])
                               for imp in imports(module) if imp.module_level)
    return chains


WEB = sorted(name for name in MODULES if name == "archive.web" or name.startswith("archive.web."))


@pytest.mark.parametrize("name", WEB)
def test_the_web_loads_no_model_library_on_import(name):
    loaded = {module: chain for module, chain in module_level_closure(name).items()
              if top(module) in MODEL_LIBRARIES}
    assert loaded == {}, " / ".join(" -> ".join(chain) for chain in loaded.values())


def test_the_checks_see_imports():
    """The reader finds what it must: relative and package imports, function-level ones, TYPE_CHECKING."""
    cli = {imp.module: imp.module_level for imp in imports("archive.cli.pipeline") if top(imp.module) == "ingest"}
    assert cli and not any(cli.values())
    understand = {imp.module for imp in imports("ingest.understand")}
    assert {"ingest.chapters", "ingest.stages", "archive.stages", "archive.passages"} <= understand
    embeddings = module_level_closure("archive.embeddings")
    assert "numpy" in embeddings and not set(map(top, embeddings)) & MODEL_LIBRARIES
    assert "torch" in {imp.module for imp in imports("archive.embeddings")}  # imported where a model loads


DISTRIBUTED_LIBRARIES = {"celery", "kombu", "redis", "billiard"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_celery_when_imported(name):
    loaded = {module: chain for module, chain in module_level_closure(name).items()
              if top(module) in DISTRIBUTED_LIBRARIES}
    assert loaded == {}, " / ".join(" -> ".join(chain) for chain in loaded.values())


def test_only_the_distributed_driver_imports_celery():
    wrong = [f"{MODULES[name].relative_to(ROOT)}:{imp.line} imports {imp.module}"
             for name in MODULES for imp in imports(name)
             if top(imp.module) in DISTRIBUTED_LIBRARIES and name != "ingest.distributed"]
    assert not wrong, "\n".join(wrong)
    assert {"celery"} <= {top(imp.module) for imp in imports("ingest.distributed")}
