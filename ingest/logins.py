"""Login decisions: a terminal's 0x0100 and 0x0102 against the device registry, with the
bounded store lookups a gateway makes for what it does not know yet.

Registration: a gateway sharing its database with others (a split deployment) answers a
registration that recorded something (an identity, a new code) only once the record is stored,
so whichever gateway the terminal authenticates at finds it; a lone gateway answers from memory
and stores behind. A terminal provisioned since the gateway started is looked up once (at the
admission's lookup rate; over it the registration is deferred, unanswered, and the terminal
asks again). Authentication: in a split deployment another gateway may have issued the code
moments ago (its device notice not here yet, or an MQTT group that dealt the 0x0100 to one
gateway and the 0x0102 to another): a refused code is checked against the store once, at the
same rate, before the refusal stands. Refusals are counted by reason and logged with the peer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ingest.admission import Admission
from ingest.device_records import DeviceRecords
from ingest.jt808.link_events import AuthenticationRequested, RegistrationRequested
from ingest.link import Link
from ingest.metrics import GatewayMetrics
from ingest.presence import SessionPresence
from ingest.registry import AuthOutcome, Claim, DeviceRegistry, Refusal
from ingest.store_calls import StoreCalls
from store import StoreError

log = logging.getLogger("lienwatch.gateway")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LoginHost(Protocol):
    """What the decisions need of the gateway (the registry exists once it started)."""

    registry: DeviceRegistry
    admission: Admission
    metrics: GatewayMetrics
    store: StoreCalls
    records: DeviceRecords
    presence: SessionPresence | None


class Logins:
    """The gateway's `decide_registration` and `decide_authentication`."""

    def __init__(self, gateway: LoginHost) -> None:
        self.gw = gateway

    def decide_registration(self, link: Link, request: RegistrationRequested) -> None:
        terminal = request.header.terminal
        if terminal in self.gw.registry or self.gw.registry.auto_register:
            self._register(link, request)
        elif self.gw.admission.start_lookup(time.monotonic()):
            self.gw.metrics.registration_lookups.labels("made").inc()
            self.gw.store.spawn(self._register_after_lookup(link, request))
        else:  # over the lookup rate: no answer, the terminal asks again
            self.gw.metrics.registration_lookups.labels("deferred").inc()
            link.registration_deferred()

    async def _register_after_lookup(self, link: Link, request: RegistrationRequested) -> None:
        """A terminal provisioned since the gateway started: ask the store once."""
        terminal = request.header.terminal
        try:
            known = await self.gw.store.call(lambda s: s.get_device(terminal))
        except Exception:
            link.registration_deferred()
            raise
        finally:
            self.gw.admission.end_lookup()
        if known is not None and terminal not in self.gw.registry:
            self.gw.registry.put(known)
        if not link.closed:  # a connection gone meanwhile gets no code
            self._register(link, request)

    def _register(self, link: Link, request: RegistrationRequested) -> None:
        """The registration decision: one call into the registry."""
        header, message = request.header, request.message
        claim = Claim(message.maker_id, message.model, message.terminal_id)
        outcome = self.gw.registry.register(header.terminal, header.edition.value, claim, now_ms())
        if outcome.result != 0:
            self._refused(link, header.terminal, "registration", outcome.refusal)
        if outcome.device is None:
            link.registration_decided(outcome.result, outcome.auth_code)
            return
        stored = self.gw.records.save(outcome.device)
        if self.gw.presence is None:  # the only gateway: its memory is the truth
            link.registration_decided(outcome.result, outcome.auth_code)
        else:  # the gateway the terminal authenticates at next must find the code stored
            self.gw.store.spawn(self._answer_once_stored(link, stored, outcome.auth_code))

    async def _answer_once_stored(
        self, link: Link, stored: asyncio.Future[bool], auth_code: str
    ) -> None:
        """Answers a registration once its record is stored; unanswered (the terminal asks
        again) when the store failed it."""
        ok = await stored
        if link.closed:
            return
        if ok:
            link.registration_decided(0, auth_code)
        else:  # the store is failing (DeviceRecords logs it): no code it does not hold
            link.registration_deferred()

    def decide_authentication(self, link: Link, request: AuthenticationRequested) -> None:
        message = request.message
        auth = self.gw.registry.authenticate(
            request.header.terminal, message.auth_code, message.imei
        )
        if (
            auth.refusal is Refusal.BAD_CODE
            and self.gw.presence is not None  # other gateways issue codes too
            and self.gw.admission.start_lookup(time.monotonic())
        ):
            self.gw.store.spawn(self._authenticate_after_lookup(link, request))
            return
        self._authentication_decided(link, request, auth)

    async def _authenticate_after_lookup(
        self, link: Link, request: AuthenticationRequested
    ) -> None:
        """A code issued through another gateway moments ago (its notice not here yet, or a
        tracker whose frames the MQTT group dealt to both): ask the store once."""
        terminal, message = request.header.terminal, request.message
        try:
            known = await self.gw.store.call(lambda s: s.get_device(terminal))
        except StoreError:
            known = None
        finally:
            self.gw.admission.end_lookup()
        if known is not None:
            self.gw.registry.put(known)
        if not link.closed:
            auth = self.gw.registry.authenticate(terminal, message.auth_code, message.imei)
            self._authentication_decided(link, request, auth)

    def _authentication_decided(
        self, link: Link, request: AuthenticationRequested, auth: AuthOutcome
    ) -> None:
        terminal = request.header.terminal
        if auth.device is not None:
            self.gw.records.save(auth.device)
        if not auth.ok:
            self._refused(link, terminal, "authentication", auth.refusal)
        link.authentication_decided(auth.ok)

    def _refused(self, link: Link, terminal: str, what: str, reason: Refusal | None) -> None:
        """Counted by reason and logged with the peer's address; nothing else changes."""
        label = (reason or Refusal.BAD_CODE).value
        self.gw.metrics.identity_refusals.labels(label).inc()
        log.warning("%s refused terminal=%s peer=%s reason=%s", what, terminal, link.peer, label)
