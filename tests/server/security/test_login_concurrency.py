"""Login under concurrent attack (issue 13 item 5): the throttle counts each attempt before the
password check, and password checks (argon2id, 64 MiB each) are bounded in number."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from hostpulse.server.testing import LiveServer


def _client(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def _together(url: str, attempts: list[tuple[str, str, str]]) -> list[httpx.Response]:
    """Each ``(address, username, password)`` sent at the same moment on its own connection
    (opened beforehand, so that they all arrive while the first checks run)."""
    clients = [_client(address) for address, _, _ in attempts]
    start = threading.Barrier(len(attempts))

    def one(i: int) -> httpx.Response:
        client = clients[i]
        client.get(f"{url}/api/v1/health").raise_for_status()
        _, username, password = attempts[i]
        start.wait(timeout=60)
        return client.post(
            f"{url}/api/v1/auth/login", json={"username": username, "password": password}
        )

    try:
        with ThreadPoolExecutor(len(attempts)) as pool:
            return list(pool.map(one, range(len(attempts))))
    finally:
        for client in clients:
            client.close()


def test_sixty_concurrent_wrong_passwords_get_ten_checks_and_the_account_is_locked(
    tmp_path: Path,
) -> None:
    with LiveServer(tmp_path / "d") as srv:
        assert srv.admin_password
        answers = _together(srv.url, [("127.0.0.1", "admin", f"wrong-{i}") for i in range(60)])
        codes = Counter(r.status_code for r in answers)
        assert codes == {401: 10, 429: 50}, codes
        assert all(
            1 <= int(r.headers["retry-after"]) <= 60 for r in answers if r.status_code == 429
        )
        # the right password does not get in either until the window has passed
        with _client("127.0.0.2") as c:
            r = c.post(
                f"{srv.url}/api/v1/auth/login",
                json={"username": "admin", "password": srv.admin_password},
            )
        assert r.status_code == 429


def test_password_checks_are_bounded_and_the_rest_get_503_with_nothing_counted(
    tmp_path: Path,
) -> None:
    with LiveServer(tmp_path / "d", password_hash_concurrency=1, password_hash_queue=2) as srv:
        assert srv.admin_password
        attempts = [(f"127.0.1.{i + 1}", f"nobody{i}", "wrong-password") for i in range(30)]
        answers = _together(srv.url, attempts)
        codes = Counter(r.status_code for r in answers)
        assert set(codes) <= {401, 503} and codes[503] > 0 and codes[401] >= 3, codes
        busy = [r for r in answers if r.status_code == 503]
        assert all(int(r.headers["retry-after"]) >= 1 for r in busy)
        assert "password checks" in busy[0].json()["detail"]
        assert srv.app.state.auth.users.hashing.peak == 1
        # a refused attempt was not counted: ten more wrong ones from a refused address are
        # all checked (401) before the eleventh is throttled
        refused = next(a for a, r in zip(attempts, answers, strict=True) if r.status_code == 503)
        with _client(refused[0]) as c:
            codes = Counter(
                c.post(
                    f"{srv.url}/api/v1/auth/login",
                    json={"username": f"other{i}", "password": "wrong-password"},
                ).status_code
                for i in range(11)
            )
        assert codes == {401: 10, 429: 1}, codes


def test_a_right_password_does_not_count_against_the_address(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        assert srv.admin_password
        with _client("127.0.2.1") as c:
            for _ in range(11):  # one more than the limit of failures
                r = c.post(
                    f"{srv.url}/api/v1/auth/login",
                    json={"username": "admin", "password": srv.admin_password},
                )
                assert r.status_code == 200
