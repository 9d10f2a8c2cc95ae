"""Password hashes, capability names, `[[api.auth.users]]` validation, the authenticator's
decisions and cache, and the route table as the one source of routes and documentation."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest

from edge import auth as edge_auth
from edge.auth import (
    ACTIONS,
    ADMIN,
    HashError,
    expand_actions,
    hash_password,
    parse_hash,
    verify_password,
)
from edge.config import Config, ConfigError, load_config
from edge.orchestrator import auth as server_auth
from edge.orchestrator.api import Api
from edge.orchestrator.auth import Authenticator, Caller, Refusal
from edge.orchestrator.openapi import _OPERATIONS, openapi_document
from edge.orchestrator.routes import PUBLIC, ROUTES, SIGNED_IN

FAST = 1 << 12  # hashes for tests: the format is the same, the cost is not


# --------------------------------------------------------------------------- hashing


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password("correct horse ☃", n=FAST)
    assert stored.startswith(f"scrypt${FAST}$8$1$")
    assert verify_password("correct horse ☃", stored)
    assert not verify_password("correct horse", stored)
    assert not verify_password("", stored)
    assert hash_password("same", n=FAST) != hash_password("same", n=FAST), "a fresh salt each"


def test_the_default_cost_and_what_it_takes() -> None:
    stored = hash_password("pw")
    n, r, p, salt, key = parse_hash(stored)
    assert (n, r, p, len(salt), len(key)) == (1 << 15, 8, 1, 16, 32)
    started = time.perf_counter()
    assert verify_password("pw", stored)
    print(f"\nscrypt N=2^15 verify: {(time.perf_counter() - started) * 1000:.0f} ms")


@pytest.mark.parametrize(
    "stored, fragment",
    [
        ("hunter2", "not a password hash"),
        ("$2b$12$abcdefghijklmnopqrstuv", "bcrypt"),
        ("scrypt$16384$8$1$!!$!!", "damaged"),
        ("scrypt$1000$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "out of range"),
        (f"scrypt${1 << 24}$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "out of range"),
        ("scrypt$16384$8$1$c2E$a2V5a2V5a2V5a2V5a2V5a2V5", "too short"),
    ],
)
def test_what_is_not_a_hash_is_refused_and_never_matches(stored: str, fragment: str) -> None:
    with pytest.raises(HashError, match=fragment):
        parse_hash(stored)
    assert not verify_password("hunter2", stored)


def test_actions_and_bacalhau_wildcards() -> None:
    assert expand_actions(["*"]) == ADMIN == frozenset(ACTIONS)
    assert expand_actions(["read:*"]) == {"read:job", "read:node", "read:agent"}
    assert expand_actions(["write:*"]) == {"write:job", "write:node"}
    assert expand_actions(["*:job", "READ:agent"]) == {"read:job", "write:job", "read:agent"}
    assert expand_actions([]) == frozenset()
    for bad in ("write:agent", "read:jobs", "admin", "", "read:"):
        with pytest.raises(ValueError, match="unknown action"):
            expand_actions([bad])


# --------------------------------------------------------------------------- config


def _load(tmp_path: Path, text: str, **env: str) -> Config:
    file = tmp_path / "config.toml"
    file.write_text(text)
    return load_config(file, {}, env)


HASH = hash_password("pw", n=FAST)
KEY = "k" * 24


def test_users_load_with_bacalhau_keys_in_bacedge_spelling(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        f"""
[[api.auth.users]]
alias = "Read Only User"
username = "reader"
password = "{HASH}"
capabilities = [{{ actions = ["read:*"] }}]

[[api.auth.users]]
api_key = "{KEY}"
capabilities = [{{ actions = ["read:job"] }}, {{ actions = ["write:job"] }}]
""",
    )
    reader, keyed = config.api.auth.users
    assert reader.name == "Read Only User" and reader.actions == expand_actions(["read:*"])
    assert keyed.actions == {"read:job", "write:job"}
    assert keyed.name.startswith("API key sha256:") and KEY not in keyed.name
    assert config.api.auth_enabled and not Config().api.auth_enabled
    masked = config.masked()["api"]["auth"]["users"]
    assert masked[0]["password"] == "********" and masked[1]["api_key"] == "********"
    assert HASH not in repr(config) and KEY not in repr(config)


@pytest.mark.parametrize(
    "users, fragment",
    [
        ('[[api.auth.users]]\nalias = "x"\n', "api.auth.users.0: a user ('x') needs a password"),
        (
            '[[api.auth.users]]\nusername = "u"\npassword = "pw"\n',
            "api.auth.users.0.password: not a password hash",
        ),
        (
            f'[[api.auth.users]]\napi_key = "{KEY}"\ncapabilities = [{{ actions = ["root"] }}]\n',
            "api.auth.users.0.capabilities.0.actions: unknown action 'root'",
        ),
        (
            f'[[api.auth.users]]\nalias = "a"\napi_key = "{KEY}"\n'
            f'[[api.auth.users]]\nalias = "a"\napi_key = "{KEY}x"\n',
            "api.auth: users.1.alias: 'a' is also users.0's alias",
        ),
        (
            f'[[api.auth.users]]\napi_key = "{KEY}"\n[[api.auth.users]]\napi_key = "{KEY}"\n',
            "api.auth: users.1.api_key: the same key is also users.0's api_key",
        ),
        (
            f'[[api.auth.users]]\nusername = "u"\npassword = "{HASH}"\n'
            f'[[api.auth.users]]\nusername = "u"\npassword = "{HASH}"\n',
            "users.1.username: 'u' is also users.0's username",
        ),
        (f'[[api.auth.users]]\npassword = "{HASH}"\n', "username and password"),
        ('[[api.auth.users]]\napi_key = "short"\n', "at least 16 characters"),
        (f'[api]\nauth_token = "{KEY}"\n[[api.auth.users]]\napi_key = "{KEY}"\n', "auth_token"),
        ('[[api.auth.users]]\nalias = "x"\nrole = "admin"\n', "users.0.role: unknown key"),
    ],
)
def test_bad_users_are_refused_naming_the_key(tmp_path: Path, users: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, users)
    assert fragment in str(error.value)
    assert KEY not in str(error.value) and 'pw"' not in str(error.value)


def test_users_come_from_the_file_only(tmp_path: Path) -> None:
    config = _load(tmp_path, "", BACEDGE_API_AUTH_USERS="admin")
    assert config.api.auth.users == []


# --------------------------------------------------------------------------- the authenticator


def _authenticator(
    tmp_path: Path, token: str | None = "tok", clock: Any = time.monotonic
) -> Authenticator:
    config = _load(
        tmp_path,
        f"""
[[api.auth.users]]
username = "reader"
password = "{HASH}"
capabilities = [{{ actions = ["read:job"] }}]

[[api.auth.users]]
alias = "writer"
api_key = "{KEY}"
capabilities = [{{ actions = ["*:job"] }}]
""",
        **({"BACEDGE_API_AUTH_TOKEN": token} if token else {}),
    )
    return Authenticator(config.api, clock)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_who_each_header_names(tmp_path: Path) -> None:
    authenticator = _authenticator(tmp_path)

    def who(header: str | None) -> Caller | Refusal:
        return asyncio.run(authenticator.identify(header))

    assert who(f"Bearer {KEY}") == Caller("writer", frozenset({"read:job", "write:job"}))
    assert who(f"bearer   {KEY}  ") == who(f"Bearer {KEY}")
    assert who("Bearer tok") == Caller("auth_token", ADMIN)
    assert who(_basic("anyone", "tok")) == Caller("auth_token", ADMIN)
    assert who(_basic("reader", "pw")) == Caller("reader", frozenset({"read:job"}))
    refusals = {
        None: "no credentials",
        "": "no credentials",
        "Bearer": "no credentials",
        "Bearer nope": "an API key that matches no user",
        _basic("reader", "nope"): "wrong password for user 'reader'",
        _basic("nobody", "pw"): "unknown user 'nobody'",
        _basic("x" * 500, "pw"): "unknown user '" + "x" * 64 + "...'",
        "Basic !!!": "Basic credentials that do not decode",
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(): "Basic credentials that do not decode",
        "Basic é": "Basic credentials that do not decode",
        _basic("reader", ""): "Basic credentials without a password",
        "Negotiate abc": "an Authorization scheme 'Negotiate'",
        "Bearer " + "A" * 5000: "an Authorization header of 5007 bytes",
        "Bearer \udcff\ud800": "an API key that matches no user",
    }
    for header, reason in refusals.items():
        answer = who(header)
        assert isinstance(answer, Refusal) and answer.reason == reason, (header, answer)
        assert "pw" not in answer.message and KEY not in answer.reason


def test_no_users_and_no_token_is_everyone(tmp_path: Path) -> None:
    authenticator = Authenticator(Config().api)
    assert asyncio.run(authenticator.identify(None)) == Caller("", ADMIN)


def test_a_verified_password_is_remembered_briefly_never_in_plain_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    authenticator = _authenticator(tmp_path, token=None, clock=lambda: now[0])
    checks: list[str] = []
    real = server_auth.verify_password

    def counting(password: Any, stored: str) -> bool:
        checks.append(stored)
        return real(password, stored)

    monkeypatch.setattr(server_auth, "verify_password", counting)

    async def scenario() -> None:
        right, wrong = _basic("reader", "pw"), _basic("reader", "nope")
        answers = await asyncio.gather(*(authenticator.identify(right) for _ in range(5)))
        assert all(isinstance(a, Caller) for a in answers)
        assert len(checks) == 1, "five requests at once share one scrypt"
        await authenticator.identify(right)
        assert len(checks) == 1, "then it is remembered"
        for _ in range(3):
            assert isinstance(await authenticator.identify(wrong), Refusal)
        assert len(checks) == 4, "a wrong password is never remembered"
        await authenticator.identify(_basic("ghost", "pw"))
        assert len(checks) == 5, "an unknown user costs a scrypt too"
        assert parse_hash(checks[-1])[:3] == parse_hash(HASH)[:3], "as costly as a user's"
        now[0] += server_auth.CACHE_SECONDS + 1
        await authenticator.identify(right)
        assert len(checks) == 6, "and forgotten after CACHE_SECONDS"

    asyncio.run(scenario())
    cached = repr(authenticator._cache) + repr(vars(authenticator))
    assert "'pw'" not in cached and "reader:pw" not in cached


def test_the_module_is_the_one_users_and_cli_share() -> None:
    assert edge_auth.__all__  # stdlib only: config and CLI import it without the server
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import edge.auth, sys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "aiohttp" not in loaded and "pydantic" not in loaded


# --------------------------------------------------------------------------- the route table


def _api(config: Config | None = None) -> Api:
    return Api(None, config or Config(), lambda: None)  # type: ignore[arg-type,return-value]


def test_every_route_of_the_router_is_in_the_table_and_back() -> None:
    api = _api()
    app = api.app()
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        served.add((route.method, path, route.handler))
    table = {(r.method, r.path, getattr(api, r.handler)) for r in ROUTES}
    assert served == table
    assert len(table) == len(ROUTES), "no route twice"


def test_the_document_is_the_table() -> None:
    for auth in (False, True):
        document = openapi_document(auth)
        operations = {
            (method.upper(), path): operation
            for path, item in document["paths"].items()
            for method, operation in item.items()
        }
        assert set(operations) == {(r.method, r.path) for r in ROUTES}
        for route in ROUTES:
            operation = operations[(route.method, route.path)]
            assert operation["summary"] == route.summary
            assert operation["x-bacedge-capability"] == route.capability
            if not auth:
                assert "security" not in operation
            elif route.capability == PUBLIC:
                assert operation["security"] == []
            else:
                assert operation["security"] == [{"bearer": []}, {"basic": []}]
                assert "401" in operation["responses"]
                assert ("403" in operation["responses"]) is (route.capability != SIGNED_IN)
    assert set(_OPERATIONS) == {r.handler for r in ROUTES}


def test_a_route_names_a_known_capability() -> None:
    from edge.orchestrator.routes import Route

    with pytest.raises(ValueError, match="unknown capability"):
        Route("GET", "/x", "alive", "read:everything", "x")
    assert {r.capability for r in ROUTES} == {*ACTIONS, PUBLIC, SIGNED_IN}
    public = {r.path for r in ROUTES if r.public}
    assert public == {"/api/v1/agent/alive", "/api/v1/agent/version", "/api/v1/openapi.json"}
