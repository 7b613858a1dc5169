"""The documents and queries of chef_server.search against a real OpenSearch node: the embedded
node scripts/setup builds (or `mvn -B -q -f search/pom.xml package` in this checkout), alone on
127.0.0.41:9200, answering as Elasticsearch 7.10.2, with the index and mapping a Chef Infra
Server creates. Only HTTP and the JVM here; every request body comes from the pure modules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chef_server.search import document, lucene, mapping, partial, query
from chef_server.search.query import SearchError

pytestmark = pytest.mark.integration

ADDRESS = "127.0.0.41"
JAVA = "/usr/bin/java"
REPO = Path(__file__).resolve().parents[3]
LAUNCHERS = [  # (jar, lib directory): what scripts/setup installed, else this checkout's build
    (Path("/opt/chef-backend/embedded/lib/opensearch/chef-backend-search.jar"),
     Path("/opt/chef-backend/embedded/lib/opensearch/lib")),
    (REPO / "search/target/chef-backend-search-1.jar", REPO / "search/target/lib"),
]
ORG, OTHER_ORG = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"


def call(method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
    data = raw.encode() if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://{ADDRESS}:9200{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    launcher = next(((jar, lib) for jar, lib in LAUNCHERS if jar.is_file() and lib.is_dir()), None)
    if launcher is None or not Path(JAVA).exists():
        pytest.skip("no search launcher built (scripts/setup, or mvn -B -q -f search/pom.xml package) or no Java")
    try:
        urllib.request.urlopen(f"http://{ADDRESS}:9200/", timeout=2)
        pytest.skip(f"something already answers on {ADDRESS}:9200")
    except (OSError, urllib.error.URLError):
        pass
    home = tmp_path_factory.mktemp("opensearch")
    config = home / "config"
    config.mkdir()
    settings = {"cluster.name": "chef-server-search-test", "node.name": "replay", "network.host": ADDRESS,
                "http.port": 9200, "transport.port": 9300, "discovery.type": "single-node",
                "path.home": str(home), "path.data": str(home / "data"), "path.logs": str(home / "logs"),
                "compatibility.override_main_response_version": True, "node.processors": 1}
    (config / "opensearch.yml").write_text(json.dumps(settings))
    (config / "log4j2.properties").write_text(
        "status = error\nappender.console.type = Console\nappender.console.name = console\n"
        "appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = %m%n\n"
        "rootLogger.level = warn\nrootLogger.appenderRef.console.ref = console\n")
    jar, lib = launcher
    log = (home / "out.log").open("w")
    proc = subprocess.Popen([JAVA, "-Xms256m", "-Xmx256m", "-Dio.netty.noUnsafe=true", "-Dlog4j2.disable.jmx=true",
                             f"-Djava.io.tmpdir={home}", "-cp", f"{jar}:{lib}/*", "io.chefbackend.search.SearchNode",
                             str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if call("GET", "/_cluster/health?wait_for_status=yellow&timeout=5s")[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            assert proc.poll() is None, (home / "out.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "OpenSearch did not start within 180 s"
            time.sleep(1)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def ohai_like(n: int) -> dict[str, Any]:
    """An automatic attribute tree shaped like ohai's (nested objects, arrays, floats, booleans)."""
    return {
        "platform": "debian" if n % 2 == 0 else "ubuntu", "platform_version": "12.7", "ipaddress": f"10.0.0.{n}",
        "fqdn": f"web{n}.example.com", "uptime_seconds": 1000 + 250 * n, "ohai_time": 1764590000.5 + n,
        "kernel": {"name": "Linux", "release": "6.1.0-28-amd64", "machine": "x86_64",
                   "modules": {"ext4": {"size": "1036288", "refcount": "2"}}},
        "network": {"interfaces": {"eth0": {"addresses": {f"10.0.0.{n}": {"family": "inet", "prefixlen": "24"}},
                                            "flags": ["UP", "BROADCAST"], "mtu": "1500"}}},
        "cpu": {"total": 2, "real": 1, "0": {"flags": ["fpu", "vme", "sse2"]}},
        "virtualization": {"systems": {}}, "cloud": None, "virtual": n == 3,
    }


def node(n: int) -> dict[str, Any]:
    roles = ["web", "base"] if n < 4 else ["db"]
    return {"name": f"web{n}", "chef_environment": "prod" if n % 3 == 0 else "dev", "json_class": "Chef::Node",
            "chef_type": "node", "run_list": [f"role[{r}]" for r in roles] + ["recipe[apache2::mod_ssl]"],
            "normal": {"tags": ["blue"] if n % 2 else []}, "default": {"apache": {"port": 80}},
            "override": {"apache": {"port": 8080 + n}} if n == 5 else {}, "automatic": ohai_like(n)}


def object_id(kind: str, n: int, org: str = ORG) -> str:
    """32 hex digits, unique across organizations as Chef's ids are (the index is shared)."""
    return f"{org[:4]}{kind[:2].encode().hex()}{n:024x}"


def write(org: str, objects: list[tuple[str, int, dict[str, Any], str | None]]) -> None:
    lines = "".join(document.bulk_index_lines(object_id(kind, n, org),
                                              document.document(kind, object_id(kind, n, org), org, obj, data_bag=bag))
                    for kind, n, obj, bag in objects)
    status, answer = call("POST", "/_bulk", raw=lines)
    assert status == 200 and not answer["errors"], answer
    assert call("POST", "/_refresh")[0] == 200


def search(index: str, q: str | None, org: str = ORG, start: str | None = None,
           rows: str | None = None) -> tuple[int, list[str]]:
    request = query.search_query(org, index, q, start, rows)
    status, answer = call("GET", query.SEARCH_PATH, request.es_body())
    if status != 200:
        raise query.engine_error(status)
    return query.hits(answer)


def nodes(*numbers: int) -> list[str]:
    return sorted(object_id("node", n) for n in numbers)


SPECIAL_VALUES = ["role[web]", "a:b", "c*d", "x/y", 'q"uote', "back\\slash", "what?", "(paren)", "{brace}",
                  "^caret", "~tilde", "!bang", "a-b+c@d.e", "ANDROID"]


def test_chef_index_documents_and_queries(engine: None) -> None:
    status, root = call("GET", "/")
    assert status == 200 and root["version"]["number"] == "7.10.2"
    assert call("GET", "/chef")[0] == 404
    status, answer = call("PUT", "/chef", mapping.index_body())
    assert status == 200 and answer["acknowledged"], answer

    write(ORG, [("node", n, node(n), None) for n in range(6)] + [
        ("role", 0, {"name": "web", "run_list": ["recipe[apache2]"], "env_run_lists": {"prod": ["recipe[x]"]},
                     "default_attributes": {"apache": {"listen": [80, 443]}}}, None),
        ("environment", 0, {"name": "prod", "cookbook_versions": {"apache2": "= 1.0.0"}}, None),
        ("client", 0, {"name": "web0", "validator": False}, None),
        ("data_bag_item", 0, {"id": "alice", "shell": "/bin/bash", "groups": ["admin", "ops"]}, "users"),
        ("data_bag_item", 1, {"id": "bob", "shell": "/bin/zsh"}, "users"),
        ("data_bag_item", 2, {"id": "alice", "shell": "/bin/sh"}, "admins"),
    ] + [("data_bag_item", 10 + i, {"id": f"v{i}", "value": v}, "special") for i, v in enumerate(SPECIAL_VALUES)])
    write(OTHER_ORG, [("node", 0, node(0), None)])

    # What knife and chef-client ask.
    assert search("node", "platform:debian") == (3, nodes(0, 2, 4))
    assert search("node", "role:web AND chef_environment:prod") == (2, nodes(0, 3))
    assert search("node", "recipe:apache2\\:\\:mod_ssl") == (6, nodes(*range(6)))
    assert search("node", "name:web*") == (6, nodes(*range(6)))
    assert search("node", "fqdn:web1.example.com") == (1, nodes(1))
    assert search("node", "machine:x86_64 AND kernel_release:6.1*") == (6, nodes(*range(6)))
    assert search("node", "addresses:10.0.0.2") == (1, nodes(2))  # an object key is a value of its parent
    assert search("node", "flags:sse2 AND tags:blue") == (3, nodes(1, 3, 5))
    assert search("node", "port:8085") == (1, nodes(5))  # override beats default
    assert search("node", "apache_port:80") == (5, nodes(0, 1, 2, 3, 4))
    assert search("node", "virtual:true") == (1, nodes(3))
    assert search("node", "cloud:[* TO *]") == (6, nodes(*range(6)))  # null is the empty value
    assert search("node", "uptime_seconds:[1000 TO 1500]") == (3, nodes(0, 1, 2))  # compared as strings
    assert search("node", "ohai_time:[1764590003 TO *]") == (3, nodes(3, 4, 5))
    assert search("node", "ohai_time:1764590002.5") == (1, nodes(2))
    assert search("node", 'fqdn:"web4.example.com"') == (1, nodes(4))
    assert search("node", "NOT role:web") == (2, nodes(4, 5))
    assert search("node", "role:db OR (platform:debian AND -chef_environment:prod)") == (3, nodes(2, 4, 5))
    assert set(search("node", "name:web12~")[1]) >= set(nodes(1, 2))  # fuzzy
    assert search("node", "name:web?") == (6, nodes(*range(6)))
    assert search("node", None) == (6, nodes(*range(6)))  # no q: everything in the org
    assert search("node", "*:*", org=OTHER_ORG) == (1, [object_id("node", 0, OTHER_ORG)])
    assert search("node", "Platform:debian") == (0, [])  # case-sensitive, as Chef's

    # Paging: total counts all, rows pages through them in id order.
    total, page = search("node", "*:*", start="2", rows="3")
    assert (total, page) == (6, nodes(*range(6))[2:5])

    # The other indexes, and a data bag's items only under its own name.
    assert search("role", "run_list:recipe\\[apache2\\] AND env_run_lists:prod AND listen:443") == \
        (1, [object_id("role", 0)])
    assert search("environment", "cookbook_versions:apache2") == (1, [object_id("environment", 0)])
    with pytest.raises(SearchError):  # `=` is no term character and cannot be escaped: a bad query
        search("environment", "apache2:=*")
    assert search("environment", "name:prod") == (1, [object_id("environment", 0)])
    assert search("client", "validator:false") == (1, [object_id("client", 0)])
    assert search("users", "id:alice") == (1, [object_id("data_bag_item", 0)])
    assert search("admins", "id:alice") == (1, [object_id("data_bag_item", 2)])
    assert search("users", "groups:admin AND data_bag:users AND chef_type:data_bag_item")[0] == 1
    assert search("users", "shell:/bin/*") == (2, sorted(object_id("data_bag_item", n) for n in (0, 1)))

    # A value with special characters is found by its escaped form, and only that value.
    for i, value in enumerate(SPECIAL_VALUES):
        assert search("special", f"value:{lucene.escape(value)}") == (1, [object_id("data_bag_item", 10 + i)]), value

    # What erchef's grammar accepts but the engine refuses is a 400 too.
    with pytest.raises(SearchError) as refused:
        search("node", "role:web AND")
    assert (refused.value.status, refused.value.message) == (400, "invalid index name or query")


def test_deletes(engine: None) -> None:
    status, answer = call("POST", "/_bulk", raw=document.bulk_delete_line(object_id("node", 5)))
    assert status == 200 and answer["items"][0]["delete"]["result"] == "deleted"
    assert call("POST", "/_refresh")[0] == 200
    assert search("node", "*:*")[0] == 5

    status, answer = call("POST", f"/{mapping.INDEX}/_delete_by_query", document.org_delete_query(ORG, "data_bag_item"))
    assert status == 200 and answer["deleted"] == 3 + len(SPECIAL_VALUES), answer
    assert call("POST", "/_refresh")[0] == 200  # as erchef does after each: the next one conflicts without
    status, answer = call("POST", f"/{mapping.INDEX}/_delete_by_query", document.org_delete_query(ORG))
    assert status == 200 and answer["deleted"] == 5 + 3, answer  # nodes, role, environment, client
    assert call("POST", "/_refresh")[0] == 200
    assert search("node", "*:*") == (0, [])
    assert search("node", "*:*", org=OTHER_ORG) == (1, [object_id("node", 0, OTHER_ORG)])


# pedant's word_break_spec: a node whose attribute values and keys hold each special character.
WORD_BREAK_CHARS = '!"$%&()*+,-:;<=>?@[\\]%_`{|}~\'\\'
ESCAPED_IN_QUERIES = '[]\\"!(){}^~*?:'
WORD_BREAK_ORG = "abcdef0123456789abcdef0123456789"


def word_break_cases() -> list[tuple[str, bool]]:
    """(query, found) as pedant expects. Its two "not found" cases for phrases between wildcards
    (`attr:*"hello world"*`, `*"key abc"*:*`) are left out: pedant's loose matching of an empty
    `rows` passes whatever comes back, and the engine does find the node for them."""
    cases = []
    for char in WORD_BREAK_CHARS:
        i = WORD_BREAK_CHARS.index(char)
        c = "\\" + char if char in ESCAPED_IN_QUERIES else char
        attr, value = f"attrtest{i}", f"dlrowolleh{i}"
        uses_char = [(f"{attr}:hello{c}world", True), (f"*:hello{c}world", True), (f"{attr}:*{c}*", True),
                     (f"{attr}:*{c}", False), (f"{attr}:*{c}world", True), (f"{attr}:hello{c}*", True),
                     (f"{attr}:{c}*", False), (f"key{c}abc:{value}", True), (f"*:{value}", True),
                     (f"*{c}*:{value}", True), (f"*{c}abc:{value}", True), (f"*{c}:{value}", False),
                     (f"{c}*:{value}", False), (f"key{c}*:{value}", True)]
        plain = [(f"{attr}:hello", False), (f"{attr}:world", False), (f"key:{value}", False), (f"abc:{value}", False)]
        cases += plain + (uses_char if char in ESCAPED_IN_QUERIES else [])
    return cases


def test_pedants_word_break_queries(engine: None) -> None:
    attributes: dict[str, str] = {}
    for char in WORD_BREAK_CHARS:  # numbered by first occurrence, as pedant does: two characters come twice
        attributes[f"attrtest{WORD_BREAK_CHARS.index(char)}"] = f"hello{char}world"
        attributes[f"key{char}abc"] = f"dlrowolleh{WORD_BREAK_CHARS.index(char)}"
    supernode = {"name": "search_supernode", "chef_environment": "_default", "run_list": [], "default": attributes}
    write(WORD_BREAK_ORG, [("node", 0, supernode, None)])
    wrong = [(q, found) for q, found in word_break_cases()
             if (search("node", q, org=WORD_BREAK_ORG)[0] == 1) != found]
    assert wrong == []


OHAI = "/usr/bin/ohai"
OHAI_ORG = "0123456789abcdef0123456789abcdee"


def test_knife_search_on_this_machines_ohai_attributes(engine: None) -> None:
    """`knife search node 'platform:P AND role:web' -a ipaddress`: a search, then a partial
    search for one attribute, over a node whose automatic attributes are ohai's real output."""
    if not Path(OHAI).exists():
        pytest.skip("no ohai (Debian's ohai package)")
    ohai = json.loads(subprocess.run([OHAI], capture_output=True, text=True, timeout=120, check=True).stdout)
    web = {"name": "real", "chef_environment": "prod", "run_list": ["role[web]"], "automatic": ohai}
    write(OHAI_ORG, [("node", 0, web, None), ("node", 1, {**web, "name": "other", "run_list": []}, None)])
    q = f"platform:{lucene.escape(ohai['platform'])} AND role:web"
    if ohai.get("ipaddress"):
        q += f" AND ipaddress:{lucene.escape(ohai['ipaddress'])}"
    assert search("node", q, org=OHAI_ORG) == (1, [object_id("node", 0, OHAI_ORG)])
    assert search("node", f"kernel_machine:{lucene.escape(ohai['kernel']['machine'])}", org=OHAI_ORG)[0] == 2
    paths = partial.parse_body(json.dumps({"ipaddress": ["ipaddress"], "os": ["kernel", "name"]}))
    assert partial.row("https://chef", "acme", "node", web, paths) == {
        "url": "https://chef/organizations/acme/nodes/real",
        "data": {"ipaddress": ohai.get("ipaddress"), "os": ohai["kernel"]["name"]}}
