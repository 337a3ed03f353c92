"""Where a feed may lead: the trust rules for every URL a feed names.

A feed is written by a stranger, and what podarchive fetches for it ends up on a public site. So:

- Only `http` and `https` URLs are followed, except that a feed read from a local file (or an OPML list read
  from a local file) may name regular files inside its own folder.
- A request may reach only the kinds of address its policy allows, checked on the address each hop (redirects
  included) actually connects to: `GuardedTransport` resolves the host itself, refuses before any connection,
  and pins the connection to the address it checked (no second lookup for a rebinding DNS server to answer).
- A feed from a public address leads only to public addresses. A feed from a loopback (or private) address, or
  from a local file on the operator's machine, may also lead to loopback (or private) addresses. The operator
  widens this to every address with `--allow-private-addresses` (`PODARCHIVE_ALLOW_PRIVATE_ADDRESSES`).

The policy travels with each request as an httpx request extension, so one client serves every show; a request
sent without one gets the strictest policy (public addresses only).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from archive.errors import ResponseTooLargeError, UntrustedURLError

PUBLIC, LOOPBACK, PRIVATE = "public", "loopback", "private"
LINK_LOCAL, MULTICAST, RESERVED = "link-local", "multicast", "reserved"
EVERY_KIND = frozenset({PUBLIC, LOOPBACK, PRIVATE, LINK_LOCAL, MULTICAST, RESERVED})
# A feed's own address kind it may lead back to; link-local (cloud metadata) and the rest never, unless widened.
SHAREABLE_KINDS = frozenset({LOOPBACK, PRIVATE})
POLICY_EXTENSION = "podarchive.fetch_policy"

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class FetchPolicy:
    """What the URLs of one feed (or one OPML list) may reach."""

    origin: str  # the feed or OPML the URLs came from, for messages
    kinds: frozenset = frozenset({PUBLIC})  # address kinds a request may connect to
    local_folder: str | None = None  # a local feed's folder: file: URLs inside it may be read

    def describe(self) -> str:
        kinds = "any address" if self.kinds >= EVERY_KIND else " or ".join(sorted(self.kinds)) + " addresses"
        return f"a feed from {self.origin} may lead only to {kinds}"


STRICT = FetchPolicy(origin="an unknown source")


def address_kind(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local:  # 169.254.169.254 (cloud metadata) is here
        return LINK_LOCAL
    if ip.is_multicast:
        return MULTICAST
    if ip.is_global:
        return PUBLIC
    if ip.is_private and not ip.is_unspecified and not ip.is_reserved:
        return PRIVATE
    return RESERVED  # unspecified, shared (100.64/10), documentation, reserved ranges


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


# --- deriving a policy --------------------------------------------------------------------------------------------


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # a malformed IPv6 host
        return ""


def is_http_url(url: str) -> bool:
    return _scheme(url) in ("http", "https")


def is_file_url(url: str) -> bool:
    return _scheme(url) == "file"


def local_path(source: str) -> Path:
    """The path a SOURCE or file: URL names."""
    if is_file_url(source):
        return Path(url2pathname(urlsplit(source).path))
    return Path(source).expanduser()


def policy_for_source(source: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> FetchPolicy:
    """The policy for the URLs a feed (or OPML list) found at SOURCE names.

    A local file may name files in its folder and loopback addresses; a URL may name public addresses and,
    when it is itself on a loopback or private address, addresses of that kind; any other source (a show hosted
    in podarchive, `podarchive:show/...`) public addresses only.
    """
    every = EVERY_KIND if allow_private else frozenset()
    if is_file_url(source) or len(_scheme(source)) <= 1:  # a path (a Windows drive letter is no scheme)
        folder = str(local_path(source).resolve().parent)
        return FetchPolicy(origin=source, kinds=frozenset({PUBLIC, LOOPBACK}) | every, local_folder=folder)
    if not is_http_url(source):  # a show hosted in podarchive, or anything else: public addresses only
        return FetchPolicy(origin=source, kinds=frozenset({PUBLIC}) | every)
    parts = urlsplit(source)
    try:
        addresses = (resolver or system_resolver)(parts.hostname or "", parts.port or 0)
        own = {address_kind(address) for address in addresses}
    except (httpx.HTTPError, ValueError):
        own = set()  # unresolvable now: the strictest policy, the request will fail on its own
    shared = own & SHAREABLE_KINDS if own <= SHAREABLE_KINDS | {PUBLIC} else set()
    return FetchPolicy(origin=source, kinds=frozenset({PUBLIC} | shared) | every)


def policy_for_listed_feeds(opml_policy: FetchPolicy, opml_source: str) -> FetchPolicy:
    """The feeds an OPML list names may reach what the list itself may reach."""
    return FetchPolicy(origin=opml_source, kinds=opml_policy.kinds, local_folder=opml_policy.local_folder)


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse, before anything is fetched, a URL whose scheme the policy does not allow.

    http(s) URLs pass here; their addresses are checked when connecting (GuardedTransport).
    """
    if is_http_url(url):
        return
    if is_file_url(url) and policy.local_folder:
        if not local_path(url).resolve().is_relative_to(policy.local_folder):
            raise UntrustedURLError(f"refused {_short(url)}: outside the feed's folder {policy.local_folder}")
        return
    scheme = _scheme(url) or "no scheme"
    where = "http or https (or a file inside the feed's folder)" if policy.local_folder else "http or https"
    raise UntrustedURLError(f"refused {_short(url)}: {scheme} URLs are not followed; {policy.origin} may lead "
                            f"only to {where} URLs")


def local_file(url: str, policy: FetchPolicy) -> Path:
    """The real path of a file: URL that the policy allows: inside the feed's folder and a regular file."""
    if not policy.local_folder:
        raise UntrustedURLError(f"refused {_short(url)}: a feed from {policy.origin} may not name local files")
    try:
        path = local_path(url).resolve(strict=True)  # symlinks resolved: a link out of the folder is outside
    except (OSError, RuntimeError) as exc:
        raise UntrustedURLError(f"could not read {_short(url)}: {getattr(exc, 'strerror', None) or exc}") from exc
    folder = Path(policy.local_folder)
    if not path.is_relative_to(folder):
        raise UntrustedURLError(f"refused {_short(url)}: outside the feed's folder {folder}")
    if not stat.S_ISREG(path.stat().st_mode):
        raise UntrustedURLError(f"refused {_short(url)}: not a regular file")
    return path


def read_local_file(url: str, policy: FetchPolicy, max_bytes: int, what: str = "file") -> bytes:
    """A local file's bytes, read only when the policy allows it and never past `max_bytes`.

    The cap is checked on what is read, not on the size `stat` reports (`/proc` files report 0).
    """
    path = local_file(url, policy)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UntrustedURLError(f"refused {path}: not a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UntrustedURLError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ResponseTooLargeError(f"{what} {path} is larger than the limit of {max_bytes} bytes")
    return data


def _short(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[:limit] + "…"


# --- the transport ------------------------------------------------------------------------------------------------


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that connects only to addresses the request's FetchPolicy allows.

    It resolves the host, refuses (UntrustedURLError) when any address is of a kind the policy does not allow,
    and sends the request to the checked address, keeping the host name for the Host header and TLS (SNI and
    certificate checks). httpx calls it for every hop of a redirect chain, so every hop is checked. Each host
    name gets its own connection pool, so a connection made (and verified) for one name never serves another
    name that shares its address.
    """

    def __init__(self, resolver: Resolver | None = None, **transport_options):
        self.resolver = resolver or system_resolver
        self._transport_options = transport_options
        self._pools: dict[tuple[str, str, int], httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = request.extensions.get(POLICY_EXTENSION) or STRICT
        url = request.url
        if url.scheme not in ("http", "https"):
            raise UntrustedURLError(f"refused {_short(str(url))}: only http and https are followed")
        port = url.port or (443 if url.scheme == "https" else 80)
        address = self.checked_address(url.host, port, policy, str(url))
        extensions = {k: v for k, v in request.extensions.items() if k != POLICY_EXTENSION}
        if url.scheme == "https":
            extensions.setdefault("sni_hostname", url.host)
        pinned = httpx.Request(request.method, url.copy_with(host=address), headers=request.headers,
                               stream=request.stream, extensions=extensions)
        return self._pool(url.scheme, url.host, port).handle_request(pinned)

    def checked_address(self, host: str, port: int, policy: FetchPolicy, url: str) -> str:
        addresses = self.resolver(host, port)
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            kind = address_kind(address)
            if kind not in policy.kinds:
                raise UntrustedURLError(
                    f"refused {_short(url)}: {host} is {address}, a {kind} address; {policy.describe()} "
                    "(--allow-private-addresses widens this)")
        return addresses[0]

    def _pool(self, scheme: str, host: str, port: int) -> httpx.HTTPTransport:
        key = (scheme, host, port)
        if key not in self._pools:
            self._pools[key] = httpx.HTTPTransport(**self._transport_options)
        return self._pools[key]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
