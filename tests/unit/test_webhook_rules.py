"""The rules of webhooks: signatures, which callback addresses are refused, and the backoff schedule."""

import socket

import pytest

from jobs.broker import LONGEST_DELAY, delay_queue, entities, retry_delay, retry_schedule, webhook_queue
from jobs.callbacks import CallbackRefused, is_acceptable, vet_callback_url
from jobs.signing import sign, verify
from tasks import webhook_http
from tests.support.webhook_receiver import Receiver

SECRET = "s3cret"


def test_signature_is_hmac_sha256_of_time_dot_body_and_verifies():
    body = b'{"uuid":"x","status":"done"}'
    header = sign(SECRET, body, 1_700_000_000)
    # Independent computation, as a receiver in another language would do it.
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, body, header, now=1_700_000_100)


@pytest.mark.parametrize("change", ["body", "secret", "old", "garbled"])
def test_a_signature_does_not_verify_once_anything_changed(change):
    body, header, now, secret = b'{"a":1}', sign(SECRET, b'{"a":1}', 1_700_000_000), 1_700_000_000, SECRET
    if change == "body":
        body = b'{"a":2}'
    elif change == "secret":
        secret = "other"
    elif change == "old":
        now += 301  # a replay after the five-minute tolerance
    else:
        header = "v1=abc"
    assert not verify(secret, body, header, now=now)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_loopback_link_local_multicast_reserved_and_unspecified_addresses_are_refused(address):
    assert not is_acceptable(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(CallbackRefused, match="not a public address"):
        vet_callback_url(f"http://{host}/hook")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_accepted_and_pinned(address):
    host = f"[{address}]" if ":" in address else address
    target = vet_callback_url(f"https://{host}:8443/hook?x=1")
    assert (target.scheme, target.port, target.path, target.address) == ("https", 8443, "/hook?x=1", address)


def test_a_name_resolving_to_loopback_is_refused_unless_private_addresses_are_allowed():
    assert socket.getaddrinfo("localhost", 80)[0][4][0] in ("127.0.0.1", "::1")
    with pytest.raises(CallbackRefused, match="'localhost' resolves to .* not a public address"):
        vet_callback_url("http://localhost:9000/hook")
    target = vet_callback_url("http://localhost:9000/hook", allow_private=True)
    assert (target.host, target.port) == ("localhost", 9000) and is_acceptable(target.address, allow_private=True)
    assert not is_acceptable("0.0.0.0", allow_private=True) and not is_acceptable("224.0.0.1", allow_private=True)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://8.8.8.8/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("8.8.8.8/hook", "http or https"),
        ("http://user:pw@8.8.8.8/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://8.8.8.8:99999/", "not a valid"),
        ("http://no-such-host.invalid/", "does not resolve"),
        ("", "non-empty"),
        ("http://8.8.8.8/" + "a" * 2100, "longer"),
    ],
)
def test_malformed_or_unusable_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(CallbackRefused, match=reason):
        vet_callback_url(url)


def test_the_allow_list_admits_listed_hosts_and_subdomains_of_dotted_entries_only():
    allowed = ("8.8.8.8", ".example.org")
    assert vet_callback_url("http://8.8.8.8/", allowed).address == "8.8.8.8"
    with pytest.raises(CallbackRefused, match="not in this service's allowed"):
        vet_callback_url("http://1.1.1.1/", allowed)
    with pytest.raises(CallbackRefused, match="not in this service's allowed"):
        vet_callback_url("http://evil-example.org/", allowed)
    # A listed host is still refused when it resolves to a private address.
    with pytest.raises(CallbackRefused, match="not a public address"):
        vet_callback_url("http://localhost/", ("localhost",))


def test_backoff_doubles_from_the_first_delay_and_stops_within_the_budget():
    assert [retry_delay(n, 10) for n in range(1, 10)] == [10, 20, 40, 80, 160, 320, 600, 600, 600]
    schedule = retry_schedule(10, 3600)
    assert schedule == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]  # 11 attempts in the hour
    assert sum(schedule) <= 3600 < sum(schedule) + LONGEST_DELAY
    assert retry_schedule(1, 10) == [1, 2, 4]


def test_a_delay_queue_dead_letters_into_the_classic_webhooks_queue_after_its_ttl():
    target, delay = webhook_queue("inference"), delay_queue("inference", 40)
    assert target.name == "inference.webhooks" and target.queue_arguments == {"x-queue-type": "classic"}
    assert delay.name == "inference.webhooks.delay-40s"
    assert delay.queue_arguments == {
        "x-queue-type": "classic",
        "x-message-ttl": 40_000,
        "x-dead-letter-exchange": "inference.webhooks",
        "x-dead-letter-routing-key": "inference.webhooks",
    }


def test_the_post_goes_to_the_vetted_address_with_the_url_host_and_follows_no_redirect():
    server = Receiver([302], headers=[("Location", "http://127.0.0.1:1/elsewhere")], body_size=100000)
    try:
        target = vet_callback_url(f"http://localhost:{server.port}/hook?a=1", allow_private=True)
        status = webhook_http.post(target, b'{"x":1}', {"Content-Type": "application/json"})
    finally:
        server.close()
    assert status == 302  # reported, not followed
    [seen] = server.received
    path, headers, body = seen["path"], seen["headers"], seen["body"]
    assert (path, body, headers["Host"]) == ("/hook?a=1", b'{"x":1}', f"localhost:{server.port}")


def test_the_post_connects_to_the_pinned_address_even_if_the_name_now_points_elsewhere():
    server = Receiver([200], body_size=100000)
    try:
        vetted = vet_callback_url(f"http://localhost:{server.port}/hook", allow_private=True)
        # A rebinding name: the host now says something else, but the connection uses the vetted address.
        rebound = vetted.__class__(**{**vetted.__dict__, "host": "rebound.invalid"})
        assert webhook_http.post(rebound, b"{}", {}) == 200
    finally:
        server.close()
    assert server.received[0]["headers"]["Host"] == f"rebound.invalid:{server.port}"


def test_the_broker_layout_lists_every_queue_and_exchange_a_deployment_creates():
    queues, exchanges = entities("inference", 10, 3600)
    assert queues[:3] == ["inference", "inference.dead", "inference.webhooks"]
    assert queues[3:] == [delay_queue("inference", delay).name for delay in retry_schedule(10, 3600)]
    assert exchanges == ["inference", "inference.dead", "inference.webhooks", "inference.events"]
