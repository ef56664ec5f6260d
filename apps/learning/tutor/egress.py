"""Where the tutor may send a tenant's chat (and its key): public addresses only, unless a
platform administrator allow-lists the host (TUTOR_ENDPOINT_ALLOWED_HOSTS).

A tenant administrator types the endpoint, so without this the web server would POST to
anything it can reach: its own loopback services, the cloud's metadata service, the private
network. Checked twice: when the settings are saved (endpoint_check: the host's DNS answers
now, a field error) and when the tutor connects (GuardedNetworkBackend, under httpx2, the
openai package's HTTP client): the address resolved at connect time is checked, then connected
to by its number, so a name that resolves to a public address when saved and to 127.0.0.1
later (DNS rebinding) is refused too, and so is a redirect to such an address.

An allow-listed host (its name or address literally as written in the URL, any case) is
connected to as it is, unchecked: the way to use an endpoint on the school's own network.
"""

import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

import anyio.to_thread
import httpcore2
import httpx2

# Metadata services that are not link-local (169.254.169.254 and AWS's fd00:ec2::254 are
# refused as link-local and unique-local anyway): Alibaba Cloud's sits in 100.64.0.0/10.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EndpointRefused(ValueError):
    """The endpoint's host is, or resolves to, an address the tutor may not reach."""


def address_refusal(address: str | IPAddress) -> str | None:
    """Why the tutor may not connect to `address`, in words, or None when it may."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])  # no IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        return "a unique-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved, non-public address"
    return None


def host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    host = host.strip("[]").lower()
    return any(host == a.strip().strip("[]").lower() for a in allowed_hosts if a.strip())


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now (an address resolves to itself). socket.gaierror
    when it does not resolve. The one resolver of this module: tests replace it to play DNS."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _refusal_of(host: str, port: int) -> str | None:
    """Why connecting to host:port is refused now, naming the address, or None."""
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        return f"its host {host} does not resolve ({exc})"
    for address in addresses:
        reason = address_refusal(address)
        if reason is not None:
            if address == host.strip("[]"):
                return f"its host {host} is {reason}"
            return f"its host {host} resolves to {address}, {reason}"
    return None


def endpoint_check(url: str, *, allowed_hosts: Collection[str]) -> None:
    """Raise EndpointRefused, saying why, unless `url`'s host is allow-listed or resolves only
    to public addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host_allowed(host, allowed_hosts):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EndpointRefused(f"The endpoint is not a valid URL ({exc}).") from None
    reason = _refusal_of(host, port)
    if reason is not None:
        raise EndpointRefused(
            f"The tutor may not connect to this endpoint: {reason}. A platform administrator "
            "can allow-list a host on your own network (TUTOR_ENDPOINT_ALLOWED_HOSTS)."
        )


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend with the check at connect time: resolves the host itself,
    refuses when any of its addresses is not public, and connects to a checked address (TLS
    still names the host: httpcore2 sends the URL's host as SNI and checks its certificate)."""

    def __init__(self, allowed_hosts: Collection[str]):
        self.allowed_hosts = tuple(allowed_hosts)
        self._backend = httpcore2.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        connect = {
            "timeout": timeout,
            "local_address": local_address,
            "socket_options": socket_options,
        }
        if host_allowed(host, self.allowed_hosts):
            return await self._backend.connect_tcp(host, port, **connect)
        try:
            addresses = await anyio.to_thread.run_sync(resolve, host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"{host} does not resolve ({exc})") from None
        for address in addresses:
            reason = address_refusal(address)
            if reason is not None:
                raise httpcore2.ConnectError(
                    f"refused to connect to {host} ({address}): {reason}, not allow-listed"
                )
        failure: Exception = httpcore2.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            try:
                return await self._backend.connect_tcp(address, port, **connect)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore2.ConnectError("the tutor does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport over GuardedNetworkBackend. Given explicitly to the client, it also
    keeps httpx2 from routing through a proxy named in this host's environment."""

    def __init__(self, *, allowed_hosts: Collection[str], limits: httpx2.Limits | None = None):
        limits = limits or httpx2.Limits(max_connections=10, max_keepalive_connections=5)
        super().__init__(limits=limits)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(allowed_hosts),
        )
