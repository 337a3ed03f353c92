"""Reading untrusted, possibly broken XML (feeds, OPML lists) with lxml, and naming its elements.

Real feeds are not always well-formed: the parser recovers what it can, and never resolves entities, loads DTDs
or reaches the network.
"""

from __future__ import annotations

from lxml import etree


def _xml_parser() -> etree.XMLParser:
    # recover: real feeds are not always well-formed. No entities, DTDs or network: feeds are untrusted input.
    return etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False)


def without_leading_whitespace(data: bytes) -> bytes:
    """Whitespace before the XML declaration makes a document ill-formed (and feedparser slow): drop it.

    Only when markup follows: in UTF-16 without a byte order mark, a space is followed by a NUL byte.
    """
    stripped = data.lstrip()
    return stripped if stripped[:1] == b"<" else data


def parse_xml(data: bytes):
    """The root element of possibly broken XML, or None when nothing can be recovered."""
    try:
        return etree.fromstring(without_leading_whitespace(data), _xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None


def split_tag(tag) -> tuple[str | None, str]:
    """(namespace URI or undeclared prefix, local name) of an element tag."""
    if not isinstance(tag, str):
        return None, ""  # comments, processing instructions
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    if ":" in tag:  # a prefix the document never declared (lxml recover mode keeps it in the name)
        prefix, _, local = tag.partition(":")
        return prefix, local
    return None, tag
