"""Which hosts a rule's templated URL may reach: ``http_allowed_hosts`` once a deployment's
labels choose the host.

A rule file is the operator's, and a host written in it is trusted. A host filled in
from a deployment's labels (``http://{{ labels.app_host }}:8000/metrics``, as the shipped
``api-scrape.yml`` had it) is chosen by whoever may call the API: any host the watchdog
can reach, cloud metadata included, with the answer's numbers shown on the read-only
status page (issue 25). So the ``scrape`` and ``http`` sources check such a URL after
templating, at request time, against the same list the ``http`` rollback step obeys,
and send nothing to a host not on it.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from watchdog.rulefile.template import PLACEHOLDER


class AllowedHosts:
    """``http_allowed_hosts``: a host (any port) or ``host:port``, as the http step reads it."""

    def __init__(self, hosts: Iterable[str] = ()) -> None:
        self._hosts = frozenset(h.strip().lower() for h in hosts if h.strip())

    def refusal(self, template: str, url: str) -> str | None:
        """Why ``url`` (``template`` rendered) may not be fetched, or None.

        Only a host that depends on the labels is checked; an unparseable URL is left
        to the request, which names it.
        """
        if not host_from_labels(template):
            return None
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return None
        host = parsed.host.lower()
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if host in self._hosts or shown in self._hosts:
            return None
        return (
            f"host {shown} comes from the deployment's labels and is not in "
            "http_allowed_hosts: add it there, or write the host in the rule"
        )


def host_from_labels(template: str) -> bool:
    """Whether the host of a URL template depends on what fills its placeholders.

    Rendered twice with different values: a placeholder in the path, the query or the
    port leaves the host as it is, one in the host does not. A template that does not
    begin with its own ``http://`` or ``https://`` is all the labels' to choose.
    """
    if not template.lower().startswith(("http://", "https://")):
        return True
    hosts = set()
    for filler in ("1", "2"):
        try:
            hosts.add(httpx.URL(PLACEHOLDER.sub(filler, template)).host)
        except httpx.InvalidURL:
            return True
    return len(hosts) > 1
