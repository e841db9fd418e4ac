"""The rules of webhooks: signatures, which callback addresses are refused, and the backoff schedule."""

import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import PROJECT_ROOT
from jobs.broker import LONGEST_DELAY, delay_queue, entities, retry_delay, retry_schedule, webhook_queue
from jobs.callbacks import (
    ADDRESS_RULES,
    EMBEDDED,
    PRIVATE,
    PUBLIC,
    REFUSED,
    CallbackRefused,
    address_rule,
    is_acceptable,
    vet_callback_url,
)
from jobs.signing import sign, verify
from tasks import webhook_http
from tasks.webhook_slots import DestinationSlots
from tests.support.webhook_receiver import Receiver, SlowReceivers

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


# One address for every row of ADDRESS_RULES: the row that must decide it.
ROW_EXAMPLES = {
    "0.0.0.0/0": ["8.8.8.8", "1.1.1.1"],
    "0.0.0.0/8": ["0.0.0.0", "0.1.2.3"],
    "10.0.0.0/8": ["10.1.2.3"],
    "100.64.0.0/10": ["100.64.0.1", "100.127.255.254"],
    "127.0.0.0/8": ["127.0.0.1", "127.9.9.9"],
    "169.254.0.0/16": ["169.254.169.254", "169.254.0.1"],
    "172.16.0.0/12": ["172.16.0.1", "172.31.255.254"],
    "192.0.0.0/24": ["192.0.0.8"],
    "192.0.2.0/24": ["192.0.2.1"],
    "192.88.99.0/24": ["192.88.99.1"],
    "192.168.0.0/16": ["192.168.1.1"],
    "198.18.0.0/15": ["198.19.0.1"],
    "198.51.100.0/24": ["198.51.100.7"],
    "203.0.113.0/24": ["203.0.113.9"],
    "224.0.0.0/4": ["224.0.0.1", "239.255.255.250"],
    "240.0.0.0/4": ["240.0.0.1", "255.255.255.254"],
    "255.255.255.255/32": ["255.255.255.255"],
    "::/0": ["4000::1", "100:0:0:1::1"],
    "::/128": ["::"],
    "::1/128": ["::1"],
    "::/96": [],  # judged by the IPv4 address inside: see EMBEDDED_EXAMPLES
    "::ffff:0:0/96": [],
    "64:ff9b::/96": [],
    "64:ff9b:1::/48": ["64:ff9b:1::a9fe:a9fe", "64:ff9b:1:ffff::1"],
    "100::/64": ["100::1"],
    "2000::/3": ["2606:4700:4700::1111", "2a00:1450::1"],
    "2001::/32": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
    "2001:db8::/32": ["2001:db8::1"],
    "2002::/16": [],
    "fc00::/7": ["fc00::1", "fd12:3456::1"],
    "fd00:ec2::254/128": ["fd00:ec2::254"],
    "fe80::/10": ["fe80::1", "febf::1"],
    "fec0::/10": ["fec0::1"],
    "ff00::/8": ["ff02::1", "ff0e::1"],
}
# IPv6 forms carrying an IPv4 address: (address, the IPv4 row that decides it).
EMBEDDED_EXAMPLES = [
    ("::ffff:127.0.0.1", "127.0.0.0/8"),
    ("::ffff:10.0.0.1", "10.0.0.0/8"),
    ("::ffff:169.254.169.254", "169.254.0.0/16"),
    ("::ffff:255.255.255.255", "255.255.255.255/32"),
    ("::ffff:8.8.8.8", "0.0.0.0/0"),
    ("::169.254.169.254", "169.254.0.0/16"),
    ("::100.64.0.1", "100.64.0.0/10"),
    ("::8.8.8.8", "0.0.0.0/0"),
    ("64:ff9b::169.254.169.254", "169.254.0.0/16"),
    ("64:ff9b::240.0.0.1", "240.0.0.0/4"),
    ("64:ff9b::0.0.0.1", "0.0.0.0/8"),
    ("64:ff9b::192.168.0.1", "192.168.0.0/16"),
    ("64:ff9b::8.8.8.8", "0.0.0.0/0"),
    ("2002:a9fe:a9fe::1", "169.254.0.0/16"),
    ("2002:e000:0001::", "224.0.0.0/4"),
    ("2002:7f00:1::1", "127.0.0.0/8"),
    ("2002:808:808::1", "0.0.0.0/0"),
]
ROWS = {str(network): (verdict, reason) for network, verdict, reason in ADDRESS_RULES}


def admitted(verdict: str) -> tuple[bool, bool]:
    """(without WEBHOOK_ALLOW_PRIVATE, with it)"""
    return {PUBLIC: (True, True), PRIVATE: (False, True), REFUSED: (False, False)}[verdict]


def test_every_row_of_the_address_table_has_an_example():
    assert set(ROW_EXAMPLES) == set(ROWS)
    assert {ROWS[network][0] for network in ROW_EXAMPLES if not ROW_EXAMPLES[network]} == {EMBEDDED}
    assert {row for _, row in EMBEDDED_EXAMPLES} >= {"169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/0"}


@pytest.mark.parametrize(
    "address, network", [(address, network) for network, addresses in ROW_EXAMPLES.items() for address in addresses]
)
def test_each_address_is_decided_by_its_row_of_the_table(address, network):
    verdict, reason = ROWS[network]
    decided_by, decided, why = address_rule(address)
    assert (str(decided_by), decided, why) == (network, verdict, reason)
    assert (is_acceptable(address), is_acceptable(address, allow_private=True)) == admitted(verdict)


@pytest.mark.parametrize("address, network", EMBEDDED_EXAMPLES)
def test_an_ipv6_form_of_an_ipv4_address_is_decided_as_that_ipv4_address(address, network):
    verdict, reason = ROWS[network]
    decided_by, decided, why = address_rule(address)
    assert (str(decided_by), decided) == (network, verdict) and why.startswith(reason)
    assert (is_acceptable(address), is_acceptable(address, allow_private=True)) == admitted(verdict)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "fe80::1",
        "100.64.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
    ],
)
def test_the_private_setting_cannot_admit_link_local_metadata_multicast_broadcast_or_reserved(address):
    assert not is_acceptable(address, allow_private=True)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(CallbackRefused, match="not a public address"):
        vet_callback_url(f"http://{host}/hook", allow_private=True)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "::1", "fc00::1", "::ffff:10.0.0.1"]
)
def test_private_and_loopback_addresses_are_refused_unless_the_setting_admits_them(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(CallbackRefused, match="not a public address"):
        vet_callback_url(f"http://{host}/hook")
    assert vet_callback_url(f"http://{host}/hook", allow_private=True).address == address


def test_the_address_table_in_the_docs_is_the_table_in_the_code():
    text = (PROJECT_ROOT / "docs" / "failures.md").read_text()
    section = text.split("## Webhook address rules", 1)[1].split("\n## ", 1)[0]
    documented = [
        tuple(cell.strip().strip("`") for cell in line.strip().strip("|").split("|"))
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    assert documented == [(str(network), verdict, reason) for network, verdict, reason in ADDRESS_RULES]


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
        ("http://8.8.8.8/a b", "space or control character"),
        (" http://8.8.8.8/", "space or control character"),
        ("http://8.8.8.8/\r\nX-Injected: 1", "space or control character"),
        ("http://8.8.8.8\t/", "space or control character"),
        ("http://8.8.8.8/\x00", "space or control character"),
        ("http://8.8.8.8/\x7f", "space or control character"),
        ("http://x\u00a0y.example/", "space or control character"),
        ("http://8.8.8.8:0/", "port 0"),
        ("http://8.8.8.8:http/", "not a valid URL"),
        ("http://[1::2::3]/", "not a valid"),
        ("http://[::1%25eth0]/", "zone index"),
        ("http://exa..mple.com/", "not a valid host name"),
        ("http://-bad.example/", "not a valid host name"),
        ("http://" + "a" * 64 + ".example/", "not a valid host name"),
        ("http://exa$mple.com/", "not a valid host name"),
        ("http://0x7f.1/", "not a valid IPv4 address"),
        ("http://2130706433/", "not a valid IPv4 address"),
        ("http://127.1/", "not a valid IPv4 address"),
        ("http://\U0001f600.example/", "not a valid internationalized name"),
    ],
)
def test_malformed_or_unusable_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(CallbackRefused, match=reason):
        vet_callback_url(url)


def test_a_non_ascii_host_is_idna_encoded_before_it_is_checked():
    with pytest.raises(CallbackRefused, match="'xn--bcher-kva.example' is not in this service's allowed"):
        vet_callback_url("http://Bücher.example/hook", ("bücher.example",))
    assert vet_callback_url("http://8.8.8.8/", ("xn--bcher-kva.example", "8.8.8.8")).host == "8.8.8.8"


def test_non_ascii_in_the_path_and_query_is_percent_encoded_and_the_fragment_dropped():
    target = vet_callback_url("http://localhost:9000/hooks/ü?name=ä#part", allow_private=True)
    assert target.path == "/hooks/%C3%BC?name=%C3%A4"
    assert target.url == "http://localhost:9000/hooks/%C3%BC?name=%C3%A4" and target.url.isascii()


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
        status = webhook_http.post(target, b'{"x":1}', {"Content-Type": "application/json"}, 2, 5)
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
        assert webhook_http.post(rebound, b"{}", {}, 2, 5) == 200
    finally:
        server.close()
    assert server.received[0]["headers"]["Host"] == f"rebound.invalid:{server.port}"


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_a_receiver_that_hangs_or_trickles_bytes_is_cut_off_at_the_attempts_deadline(trickle):
    """The socket timeout alone would never end an answer that sends a byte every 0.2 s."""
    with SlowReceivers(1, trickle=trickle) as slow:
        target = vet_callback_url(slow.urls[0], allow_private=True)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no whole answer within 1.5 s"):
            webhook_http.post(target, b"{}", {}, 1, 1.5)
        elapsed = time.monotonic() - started
        if trickle:
            assert slow.bytes_sent() >= 3, "the receiver was still sending when it was cut off"
    assert 1.5 <= elapsed < 2.5


def test_connecting_to_a_closed_port_fails_at_once():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    target = vet_callback_url(f"http://127.0.0.1:{port}/hook", allow_private=True)
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        webhook_http.post(target, b"{}", {}, 1, 10)
    assert time.monotonic() - started < 1


def test_a_destination_has_only_its_own_slots():
    slots = DestinationSlots()
    hanging, healthy = ("127.0.0.1", 1000), ("127.0.0.1", 1001)
    assert [slots.take(hanging, 2) for _ in range(3)] == [True, True, False]
    assert slots.take(healthy, 2), "another port of the same address has its own slots"
    slots.give_back(hanging)
    assert slots.take(hanging, 2) and not slots.take(hanging, 2)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.builds("http://{}/{}".format, st.text(max_size=30), st.text(max_size=30)))
def test_any_string_is_either_a_clean_ascii_target_or_refused_with_a_reason(url):
    """Never another exception: what is refused at POST cannot crash a delivery later."""
    try:
        target = vet_callback_url(url, allowed_hosts=("localhost",), allow_private=True)
    except CallbackRefused as refusal:
        assert str(refusal)
        return
    assert target.url.isascii() and not any(char.isspace() or ord(char) < 32 for char in target.url)
    assert vet_callback_url(target.url, allowed_hosts=("localhost",), allow_private=True) == target


def test_the_broker_layout_lists_every_queue_and_exchange_a_deployment_creates():
    queues, exchanges = entities("inference", 10, 3600)
    assert queues[:3] == ["inference", "inference.dead", "inference.webhooks"]
    assert queues[3:] == [delay_queue("inference", delay).name for delay in retry_schedule(10, 3600)]
    assert exchanges == ["inference", "inference.dead", "inference.webhooks", "inference.events"]
