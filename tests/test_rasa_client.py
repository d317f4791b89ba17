"""The web app's Rasa client spreading messages over several Rasa servers by load
(clinic.rasa_client): a conversation keeps its own server (rendezvous hash) while loads are
near, goes to the least busy server when its own has clearly more in flight, and the
failover rules (servers that failed lately last, one retry on the next) hold all the same.
The failover itself is tested in test_multi_instance.py and test_faults.py."""

import asyncio
import uuid
from typing import List

import pytest

from clinic.rasa_client import SPREAD_MARGIN, RasaClient, RasaUnavailable
from tests.fake_rasa import FakeRasa
from tests.stack import free_port

A, B, C = "http://a:5005", "http://b:5005", "http://c:5005"


def owned_by(client: RasaClient, url: str, count: int = 5) -> List[str]:
    found = []
    while len(found) < count:
        cid = uuid.uuid4().hex
        if client.servers_for(cid)[0] == url:
            found.append(cid)
    return found


def test_a_conversation_keeps_its_own_server_while_loads_are_near() -> None:
    client = RasaClient(f"{A},{B}")
    cid = owned_by(client, A, 1)[0]
    assert client.servers_for(cid) == [A, B]
    client.in_flight.update({A: 7, B: 7 - SPREAD_MARGIN + 1})
    assert client.servers_for(cid) == [A, B]
    client.in_flight.update({A: 3, B: 5})  # the other busier: its own all the more
    assert client.servers_for(cid) == [A, B]


def test_a_conversation_goes_to_the_least_busy_server_when_its_own_has_clearly_more_in_flight() -> None:
    client = RasaClient(f"{A},{B},{C}")
    cid = owned_by(client, A, 1)[0]
    own_order = client.servers_for(cid)
    client.in_flight.update({A: 6, B: 4, C: 4})
    least = own_order[1]  # of equal loads, the one the hash puts first
    assert client.servers_for(cid) == [least, A, own_order[2]]  # its own next: the retry goes there
    client.in_flight.update({A: 6, B: 5, C: 5})
    assert client.servers_for(cid) == own_order
    client.in_flight.update({A: 6, own_order[1]: 4, own_order[2]: 1})
    assert client.servers_for(cid) == [own_order[2], A, own_order[1]]


def test_a_server_that_failed_lately_is_not_chosen_for_being_idle() -> None:
    client = RasaClient(f"{A},{B}")
    cid = owned_by(client, A, 1)[0]
    client._down_until[B] = float("inf")
    client.in_flight.update({A: 9, B: 0})
    assert client.servers_for(cid) == [A, B]
    client._down_until[A] = float("inf")  # both down: the hash order
    assert client.servers_for(cid) == [A, B]
    one = RasaClient(A)  # one URL (a load balancer): nothing to choose
    one.in_flight[A] = 50
    assert one.servers_for(cid) == [A]


def test_messages_without_a_conversation_go_round_by_turn_unless_one_is_clearly_busier() -> None:
    client = RasaClient(f"{A},{B}")
    assert [client.servers_for(None)[0] for _ in range(4)] == [A, B, A, B]
    client.in_flight.update({A: 4, B: 0})
    assert [client.servers_for(None)[0] for _ in range(4)] == [B, B, B, B]


def SlowRasa(name: str, delay_s: float = 0.05, status: int = 200) -> FakeRasa:
    """A Rasa stand-in answering each message after ``delay_s`` (its name as the reply)."""
    return FakeRasa(name, status=status, delay_s=delay_s)


def test_ten_busy_conversations_hashed_to_one_server_are_spread_and_each_alone_stays_on_its_own() -> None:
    async def main() -> None:
        a, b = SlowRasa("a"), SlowRasa("b")
        for server in (a, b):
            await server.start()
        client = RasaClient(f"{a.url},{b.url}")
        conversations = owned_by(client, a.url, 10)

        async def visitor(cid: str) -> List[str]:  # a closed loop: the next message once answered
            return [(await client.send(cid, "hi"))[0]["text"] for _ in range(6)]

        answers = await asyncio.gather(*(visitor(c) for c in conversations))
        assert len(b.senders) >= 20  # of 60, all hashed to a
        assert {text for texts in answers for text in texts} == {"a", "b"}
        assert a.most_held - b.most_held <= SPREAD_MARGIN + 1 and a.most_held <= 10 - 4
        assert client.in_flight == {a.url: 0, b.url: 0}

        b.senders.clear()
        for cid in conversations:  # one at a time: nothing in flight elsewhere, each on its own
            assert (await client.send(cid, "hi"))[0]["text"] == "a"
        assert b.senders == []

        await client.close()
        for server in (a, b):
            await server.runner.cleanup()

    asyncio.run(main())


def test_the_count_in_flight_comes_back_to_zero_after_errors_and_a_moved_message_is_retried_on_its_own_server() -> None:
    async def main() -> None:
        failing, slow = SlowRasa("failing", status=500), SlowRasa("slow", delay_s=2.0)
        for server in (failing, slow):
            await server.start()
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        client = RasaClient(f"{failing.url},{down}", timeout_s=0.5)
        with pytest.raises(RasaUnavailable):
            await client.send(owned_by(client, failing.url, 1)[0], "hi")  # an error answer: not retried
        with pytest.raises(RasaUnavailable):
            await client.send(owned_by(client, down, 1)[0], "hi")  # refused, then the retry gets a 500
        assert client.in_flight == {failing.url: 0, down: 0}

        timing_out = RasaClient(slow.url, timeout_s=0.2)
        with pytest.raises(RasaUnavailable):
            await timing_out.send("c", "hi")
        assert timing_out.in_flight == {slow.url: 0}

        # a message moved off its busy server to one that turns out down: retried on its own
        ok = SlowRasa("ok", delay_s=0.0)
        await ok.start()
        spread = RasaClient(f"{ok.url},{down}")
        cid = owned_by(spread, ok.url, 1)[0]
        spread.in_flight[ok.url] = SPREAD_MARGIN  # as if busy
        assert spread.servers_for(cid) == [down, ok.url]
        assert (await spread.send(cid, "hi"))[0]["text"] == "ok"
        assert spread.servers_for(cid) == [ok.url, down]  # the down one is not chosen again meanwhile

        for c in (client, timing_out, spread):
            await c.close()
        for server in (failing, slow, ok):
            await server.runner.cleanup()

    asyncio.run(main())
