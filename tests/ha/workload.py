"""A continuous chef-client-like workload through one URL (the load balancer), as a thread.

Each run, as chef-client does it: register a client with the validator key (a new node every other run),
GET its node (404 on the first run, then POST it), solve the run list (POST
/environments/_default/cookbook_versions), download a recipe file, PUT the node with a run counter, and
one search. Every request is retried while it answers 503 or the connection fails (what a client retries);
every other answer is checked against what that step may answer, and anything else is recorded as
unexpected. Acknowledged writes (registered clients, node counters) are recorded for the checks afterwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from cryptography.hazmat.primitives import serialization

from chef_server.ctl.client import sign_headers

RETRIED = {503, 0}  # 0: no answer (connection refused or reset, TLS cut, timeout)
GIVE_UP_S = 180  # one request retried this long is a hang, reported rather than waited on


@dataclass
class Actor:
    """Who signs: a user or client name and its private key."""

    name: str
    key: Any

    @classmethod
    def of(cls, name: str, pem: str) -> Actor:
        return cls(name, serialization.load_pem_private_key(pem.encode(), password=None))


@dataclass
class Answer:
    status: int  # 0: no answer
    body: Any = None
    content: bytes = b""


class Unexpected(Exception):
    """An answer a step may not give: the workload stops on it."""


@dataclass
class ChefRuns:
    url: str  # the load balancer
    org: str
    validator: Actor
    verify: str  # the certificate to trust
    cookbook: str  # the run list's one cookbook, already uploaded
    recipe: bytes  # its recipes/default.rb
    acked_clients: list[str] = field(default_factory=list)
    acked_counters: dict[str, int] = field(default_factory=dict)  # node -> last run count acknowledged
    runs: int = 0  # completed runs
    retried: int = 0  # requests answered 503 or not at all (then retried)
    unexpected: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _session: requests.Session = field(default_factory=requests.Session)

    # -- one request -----------------------------------------------------------------------------------
    def send(self, actor: Actor | None, method: str, path: str, body: object = None) -> Answer:
        """One attempt; path is relative to the server (signed) or a full URL (unsigned, a file download)."""
        data = b"" if body is None else orjson.dumps(body)
        headers: dict[str, str] = {}
        if actor is not None:
            headers = sign_headers(actor.key, actor.name, method, path, data)
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = path if path.startswith("https://") else self.url + path
        try:
            resp = self._session.request(method, url, data=data, headers=headers, timeout=30, verify=self.verify)
        except requests.RequestException:
            self._session = requests.Session()  # drop connections the fault may have left half-open
            return Answer(0)
        try:
            payload = resp.json() if resp.content and actor is not None else None
        except ValueError:
            payload = None
        return Answer(resp.status_code, payload, resp.content)

    def call(self, step: str, actor: Actor | None, method: str, path: str, body: object = None,
             ok: frozenset[int] = frozenset({200}), after_unknown: frozenset[int] = frozenset()) -> Answer:
        """Repeat while the answer is retried; `after_unknown` are answers allowed only once an earlier attempt's
        outcome was unknown (a 409 for a create that may have happened). Anything else is unexpected."""
        deadline = time.monotonic() + GIVE_UP_S
        unknown = False
        while True:
            answer = self.send(actor, method, path, body)
            if answer.status in ok or (unknown and answer.status in after_unknown):
                return answer
            if answer.status not in RETRIED:
                detail = answer.body if answer.body is not None else answer.content[:200]
                self.unexpected.append(f"{step} {method} {path}: {answer.status} {detail}")
                raise Unexpected(self.unexpected[-1])
            self.retried += 1
            unknown = unknown or method != "GET"
            if time.monotonic() > deadline or self._stop.is_set():
                self.unexpected.append(f"{step} {method} {path}: still {answer.status} after {GIVE_UP_S} s")
                raise Unexpected(self.unexpected[-1])
            time.sleep(0.2)

    # -- one chef-client run ---------------------------------------------------------------------------
    def register(self, name: str) -> Actor | None:
        """POST /clients as the validator; None if an earlier attempt created it and its key is lost (a new
        name is used then, as a node would be re-bootstrapped)."""
        answer = self.call("register", self.validator, "POST", f"/organizations/{self.org}/clients",
                           {"name": name, "create_key": True}, ok=frozenset({201}), after_unknown=frozenset({409}))
        if answer.status == 409:
            return None
        self.acked_clients.append(name)
        return Actor.of(name, answer.body["chef_key"]["private_key"])

    def run(self, client: Actor, count: int) -> None:
        # Each chef-client run is a new process with new connections: the load balancer spreads runs over frontends.
        self._session = requests.Session()
        org = f"/organizations/{self.org}"
        node_path = f"{org}/nodes/{client.name}"
        node = self.call("get node", client, "GET", node_path, ok=frozenset({200, 404}))
        if node.status == 404:
            self.call("create node", client, "POST", f"{org}/nodes", self.node(client.name, 0),
                      ok=frozenset({201}), after_unknown=frozenset({409}))
        solved = self.call("solve", client, "POST", f"{org}/environments/_default/cookbook_versions",
                           {"run_list": [f"recipe[{self.cookbook}]"]}).body
        recipe_url = solved[self.cookbook]["recipes"][0]["url"]
        content = self.call("download", None, "GET", recipe_url).content
        if content != self.recipe:
            self.unexpected.append(f"download {recipe_url}: {content[:80]!r} is not the uploaded recipe")
            raise Unexpected(self.unexpected[-1])
        self.call("save node", client, "PUT", node_path, self.node(client.name, count))
        self.acked_counters[client.name] = count
        self.call("search", client, "GET", f"{org}/search/node?q=name:{client.name}")
        self.runs += 1

    def node(self, name: str, count: int) -> dict:
        return {"name": name, "chef_type": "node", "json_class": "Chef::Node", "chef_environment": "_default",
                "run_list": [f"recipe[{self.cookbook}]"], "normal": {"runs": count},
                "automatic": {"hostname": name, "platform": "debian", "ohai_time": time.time()}}

    def loop(self) -> None:
        client: Actor | None = None
        count = serial = 0
        try:
            while not self._stop.is_set():
                if client is None or count >= 2:  # a new node every other run
                    serial += 1
                    client = self.register(f"ha-node-{serial}")
                    count = 0
                    if client is None:
                        continue
                count += 1
                self.run(client, count)
        except Unexpected:
            return

    # -- control ---------------------------------------------------------------------------------------
    def start(self) -> ChefRuns:
        self._thread = threading.Thread(target=self.loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(GIVE_UP_S + 30)

    def wait_runs(self, more: int, timeout: float = 300) -> None:
        """Until `more` further runs completed (the workload resumed), or fail with what it saw."""
        target = self.runs + more
        deadline = time.monotonic() + timeout
        while self.runs < target:
            assert not self.unexpected, self.unexpected
            assert self._thread is not None and self._thread.is_alive(), "the workload stopped"
            assert time.monotonic() < deadline, f"the workload did not resume: {self.runs} runs, {self.retried} retried"
            time.sleep(0.2)
