"""Signed "Open document" links: what a signature grants (one document, until it expires) and what it does not."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
from pydantic import ValidationError

from assistant.api.security import AccessError, AccessPolicy, LinkSigner
from assistant.api.sources import source_url
from assistant.config import SecuritySettings
from assistant.ui.cards import render_sources

SECRET = "s" * 32
NOW = 1_764_230_000


def signer(now: float = NOW, secret: str = SECRET, lifetime_s: int = 3600) -> LinkSigner:
    return LinkSigner(secret, lifetime_s, clock=lambda: now)


def split(url: str) -> tuple[str, str]:
    """A link's source id (as the server's router decodes it) and its query string."""
    parts = urlsplit(url)
    return unquote(parts.path.removeprefix("/api/sources/")), parts.query


def test_a_signed_link_opens_its_own_source_until_it_expires():
    links = signer()
    url = source_url("notes/Reisekosten Übersicht.docx", links)
    assert url.startswith("/api/sources/notes/Reisekosten%20%C3%9Cbersicht.docx?exp=")
    source, query = split(url)
    assert parse_qs(query)["exp"] == [str(NOW + 3600)]
    assert links.valid(source, query)
    assert signer(now=NOW + 3599).valid(source, query)
    assert not signer(now=NOW + 3600).valid(source, query), "expired"
    assert not signer(now=NOW + 10**6).valid(source, query)


def test_a_signature_names_one_source_one_expiry_and_one_secret():
    links = signer()
    source, query = split(source_url("policy.pdf", links))
    params = {k: v[0] for k, v in parse_qs(query).items()}
    flipped = params["sig"][:-1] + ("A" if params["sig"][-1] != "A" else "B")
    assert not links.valid("other.pdf", query), "another source with the same signature"
    assert not links.valid("policy.pdf/", query) and not links.valid("./policy.pdf", query)
    assert not links.valid("", query)
    assert not links.valid(source, urlencode({**params, "sig": flipped})), "a tampered signature"
    assert not links.valid(source, urlencode({**params, "exp": int(params["exp"]) + 60})), "a moved expiry"
    assert not signer(secret="t" * 32).valid(source, query), "another server's secret"
    random = LinkSigner()  # no secret configured: one drawn at random
    assert not random.valid(source, query) and random.valid(*split(source_url(source, random)))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: {"exp": p["exp"]},  # no signature
        lambda p: {"sig": p["sig"]},  # no expiry
        lambda p: {**p, "extra": "1"},  # anything else in the query
        lambda p: {**p, "exp": "١٧٦٤٢٣٣٦٠٠"},  # digits of another script, which int() would read
        lambda p: {**p, "exp": "-1"},
        lambda p: {**p, "exp": ""},
        lambda p: {**p, "sig": "ü" * 43},  # not ASCII: refused, not an error
        lambda p: {**p, "sig": ""},
    ],
)
def test_malformed_queries_are_refused(change):
    links = signer()
    source, query = split(source_url("policy.pdf", links))
    params = {k: v[0] for k, v in parse_qs(query).items()}
    assert not links.valid(source, urlencode(change(params)))


def test_a_link_signed_for_longer_than_the_lifetime_is_refused():
    # Signed when the lifetime was a day; the server now allows an hour.
    day = signer(lifetime_s=86_400)
    source, query = split(source_url("policy.pdf", day))
    assert day.valid(source, query)
    assert not signer(lifetime_s=3600).valid(source, query)


def test_a_replica_whose_clock_is_a_little_behind_opens_a_fresh_link():
    source, query = split(source_url("policy.pdf", signer(now=NOW)))
    assert signer(now=NOW - 30).valid(source, query)
    assert not signer(now=NOW - 3600).valid(source, query)


def test_repeated_parameters_are_refused():
    links = signer()
    source, query = split(source_url("policy.pdf", links))
    assert not links.valid(source, f"{query}&{query}")


def keyed_policy(**extra) -> AccessPolicy:
    return AccessPolicy(SecuritySettings(api_keys="k-unit", widget_key="pub", allowed_origins="http://a", **extra))


def test_the_policy_lets_a_signed_link_open_only_that_document_with_get():
    policy = keyed_policy(link_secret=SECRET)
    source, query = split(source_url("policy.pdf", policy.link_signer))
    path = f"/api/sources/{source}"
    assert policy.authorize(path, {}, "10.0.0.1", query=query) == "addr:10.0.0.1", "counted per address"
    for method, other in [
        ("GET", "/api/sources/other.pdf"),
        ("GET", "/api/sources"),
        ("GET", "/api/feedback"),
        ("GET", "/v1/models"),
        ("POST", "/api/ask"),
        ("POST", path),
        ("HEAD", path),
    ]:
        with pytest.raises(AccessError) as refused:
            policy.authorize(other, {}, "10.0.0.2", method=method, query=query)
        assert refused.value.status == 401, (method, other)
    with pytest.raises(AccessError) as admin:
        policy.authorize("/api/documents", {}, "10.0.0.3", query=query)
    assert admin.value.status == 403  # admin routes never look at a signature
    with pytest.raises(AccessError):
        policy.authorize(path, {}, "10.0.0.4", query="")


def test_wrong_links_count_as_failed_authentications():
    policy = keyed_policy(failed_auth_per_minute=3)
    source, query = split(source_url("policy.pdf", policy.link_signer))
    for _ in range(3):
        with pytest.raises(AccessError) as refused:
            policy.authorize("/api/sources/other.pdf", {}, "10.0.0.9", query=query)
        assert refused.value.status == 401
    with pytest.raises(AccessError) as throttled:
        policy.authorize(f"/api/sources/{source}", {}, "10.0.0.9", query=query)
    assert throttled.value.status == 429, "a right link is not told apart from a wrong one while throttled"


def test_signed_links_are_rate_limited_per_address():
    policy = keyed_policy(rate_limit_per_minute=2)
    source, query = split(source_url("policy.pdf", policy.link_signer))
    path = f"/api/sources/{source}"
    policy.authorize(path, {}, "10.0.1.1", query=query)
    policy.authorize(path, {}, "10.0.1.1", query=query)
    with pytest.raises(AccessError) as limited:
        policy.authorize(path, {}, "10.0.1.1", query=query)
    assert limited.value.status == 429
    assert policy.authorize(path, {}, "10.0.1.2", query=query) == "addr:10.0.1.2"


def test_without_keys_links_stay_plain():
    policy = AccessPolicy(SecuritySettings())
    assert policy.link_signer is None
    assert source_url("policy.pdf", policy.link_signer) == "/api/sources/policy.pdf"


def test_each_policy_without_a_configured_secret_draws_its_own():
    one, two = keyed_policy(), keyed_policy()
    source, query = split(source_url("policy.pdf", one.link_signer))
    assert one.link_signer.valid(source, query) and not two.link_signer.valid(source, query)
    shared = [keyed_policy(link_secret=SECRET) for _ in range(2)]  # replicas with the same setting
    source, query = split(source_url("policy.pdf", shared[0].link_signer))
    assert shared[1].link_signer.valid(source, query)


def test_a_short_secret_is_a_settings_error():
    with pytest.raises(ValidationError, match="at least 16 characters"):
        SecuritySettings(link_secret="short")
    with pytest.raises(ValidationError):
        SecuritySettings(link_lifetime_s=0)


def test_ui_cards_carry_the_signed_link_before_the_fragment():
    links = signer()
    citation = {"n": 1, "source": "bike policy.pdf", "title": "Bikes", "text": "Bikes are allowed.", "start": 0,
                "end": 18, "location": "page 3", "highlights": [[0, 18]]}  # fmt: skip
    turns = [{"role": "user", "text": "bikes?"}, {"role": "assistant", "text": "Yes [1]", "citations": [citation]}]
    html = render_sources(turns, lambda source: source_url(source, links))
    href = html.split("href='")[1].split("'")[0].replace("&amp;", "&")
    assert href.startswith("/api/sources/bike%20policy.pdf?exp=") and href.endswith("#page=3")
    assert links.valid(*split(href.split("#")[0]))
    assert "href='/api/sources/bike%20policy.pdf#page=3'" in render_sources(turns), "unsigned by default"
