"""otpd's tokens, verified by the JWT libraries backends use (run by scripts/interop.sh).

The otpd under test serves four apps (see scripts/interop.sh): hs (HS256), rs (RS256, keys
rs-old and rs-new, rs-new active), es (ES256) and ed (EdDSA), es and ed with the issuer
otpd-interop. Each check signs a user in through the v1 routes (register, the code from the log
gateway's line, activate), then asserts; a failed assertion fails the run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import traceback
import uuid
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from passageidentity import Passage

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
PUBLIC_MEMBERS = {
    "RSA": {"kty", "kid", "use", "alg", "n", "e"},
    "EC": {"kty", "kid", "use", "alg", "crv", "x", "y"},
    "OKP": {"kty", "kid", "use", "alg", "crv", "x"},
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Otpd:
    """A live otpd: its base URL and the log its log gateway writes codes to."""

    def __init__(self, base_url: str, log: Path, keys: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self.log = log
        self.keys = keys

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def code_for(self, email: str) -> str:
        """The code the log gateway last wrote for `email` (waits up to 5 s for the line)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            code = None
            for line in self.log.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("to") == email and str(entry.get("msg", "")).startswith("[log gateway]"):
                    code = entry["msg"].removeprefix("[log gateway]").strip()
            if code:
                return code
            time.sleep(0.05)
        raise AssertionError(f"no code for {email} in {self.log}")

    def sign_in(self, app: str) -> tuple[str, str]:
        """Registers a new user of `app` and activates it: (access token, the user's id as the API says it)."""
        email = f"interop-{uuid.uuid4().hex[:12]}@example.com"
        sent = requests.post(self.url(f"/v1/apps/{app}/register/otp"), json={"identifier": email}, timeout=10)
        assert sent.status_code == 201, sent.text
        otp_id = sent.json()["otp_id"]
        activated = requests.post(
            self.url(f"/v1/apps/{app}/otp/activate"), json={"otp_id": otp_id, "otp": self.code_for(email)}, timeout=10
        )
        assert activated.status_code == 200, activated.text
        token = activated.json()["auth_result"]["auth_token"]
        me = self.current_user(app, token)
        assert me.status_code == 200, me.text
        return token, me.json()["user"]["id"]

    def current_user(self, app: str, token: str) -> requests.Response:
        return requests.get(self.url(f"/v1/apps/{app}/currentuser"), headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def jwks(self, app: str) -> requests.Response:
        return requests.get(self.url(f"/v1/apps/{app}/.well-known/jwks.json"), timeout=10)

    def jwks_uri(self, app: str) -> str:
        """The app's JWKS URL as its discovery document names it."""
        discovery = requests.get(self.url(f"/v1/apps/{app}/.well-known/openid-configuration"), timeout=10)
        assert discovery.status_code == 200, discovery.text
        uri = discovery.json()["jwks_uri"]
        assert uri == self.url(f"/v1/apps/{app}/.well-known/jwks.json"), uri
        return uri


def test_passage_sdk_validates_an_rs256_token(otpd: Otpd) -> None:
    token, user_id = otpd.sign_in("rs")
    passage = Passage("rs", "unused-api-key")
    # The one-line change for a backend moving off Passage: its JWKS client points at otpd.
    passage.auth.jwks = jwt.PyJWKClient(otpd.url("/v1/apps/rs/.well-known/jwks.json"))
    assert passage.auth.validate_jwt(token) == user_id
    # It checks what it says it checks: another app's audience, and a tampered token, fail.
    other = Passage("es", "unused-api-key")
    other.auth.jwks = jwt.PyJWKClient(otpd.url("/v1/apps/rs/.well-known/jwks.json"))
    expect_raises(jwt.InvalidAudienceError, lambda: other.auth.validate_jwt(token))
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    expect_raises(jwt.InvalidSignatureError, lambda: passage.auth.validate_jwt(tampered))


def check_pyjwk(otpd: Otpd, app: str, alg: str) -> None:
    token, user_id = otpd.sign_in(app)
    client = jwt.PyJWKClient(otpd.jwks_uri(app))
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=[alg], audience=app, issuer="otpd-interop")
    assert claims["sub"] == user_id, (claims, user_id)
    assert jwt.get_unverified_header(token)["alg"] == alg
    # The audience and issuer checks are live: either wrong fails.
    expect_raises(jwt.InvalidAudienceError, lambda: jwt.decode(token, key, algorithms=[alg], audience="hs", issuer="otpd-interop"))
    expect_raises(jwt.InvalidIssuerError, lambda: jwt.decode(token, key, algorithms=[alg], audience=app, issuer="otpd"))


def test_pyjwkclient_verifies_es256(otpd: Otpd) -> None:
    check_pyjwk(otpd, "es", "ES256")


def test_pyjwkclient_verifies_eddsa(otpd: Otpd) -> None:
    check_pyjwk(otpd, "ed", "EdDSA")


def test_jwks_lists_every_key_and_no_private_member(otpd: Otpd) -> None:
    expected = {"rs": ["rs-old", "rs-new"], "es": ["es-1"], "ed": ["ed-1"]}
    for app, kids in expected.items():
        reply = otpd.jwks(app)
        assert reply.status_code == 200, reply.text
        assert reply.headers.get("Cache-Control") == "public, max-age=300", reply.headers
        keys = reply.json()["keys"]
        assert [k["kid"] for k in keys] == kids, keys
        for key in keys:
            assert not PRIVATE_MEMBERS & key.keys(), key
            assert set(key) == PUBLIC_MEMBERS[key["kty"]], key
            assert key["use"] == "sig"
            jwt.PyJWK(key)  # a key PyJWT can use
    # Each published key is the public half of its private key file.
    for kid in ["rs-old", "rs-new"]:
        private = serialization.load_pem_private_key((otpd.keys / f"{kid}.pem").read_bytes(), password=None)
        published = next(k for k in otpd.jwks("rs").json()["keys"] if k["kid"] == kid)
        assert int.from_bytes(base64.urlsafe_b64decode(published["n"] + "=="), "big") == private.public_key().public_numbers().n


def test_hs256_app_publishes_no_key(otpd: Otpd) -> None:
    reply = otpd.jwks("hs")
    assert reply.status_code == 200 and reply.json() == {"keys": []}, reply.text
    assert otpd.jwks("no-such-app").status_code == 404


def test_a_token_of_a_listed_inactive_key_is_accepted(otpd: Otpd) -> None:
    token, user_id = otpd.sign_in("rs")
    claims = jwt.decode(token, options={"verify_signature": False})
    old = (otpd.keys / "rs-old.pem").read_bytes()
    by_old = jwt.encode(claims, old, algorithm="RS256", headers={"kid": "rs-old"})
    reply = otpd.current_user("rs", by_old)
    assert reply.status_code == 200, reply.text
    assert reply.json()["user"]["id"] == user_id
    # A key that is not listed, under a listed kid, is refused.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "rs-old"})
    assert otpd.current_user("rs", forged).status_code == 401


def test_algorithm_confusion_and_alg_none_are_401(otpd: Otpd) -> None:
    token, _ = otpd.sign_in("rs")
    payload = token.split(".")[1]
    published = jwt.PyJWK(next(k for k in otpd.jwks("rs").json()["keys"] if k["kid"] == "rs-new"))
    public_pem = published.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_pkcs1 = published.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    forged = []
    for secret in [public_pem, public_pem.strip(), public_pkcs1]:
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rs-new"}).encode())
        mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        forged.append(f"{head}.{payload}.{b64url(mac)}")
    for alg in ["none", "None", "NONE"]:
        head = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": "rs-new"}).encode())
        forged.append(f"{head}.{payload}.")
    for bad in forged:
        reply = otpd.current_user("rs", bad)
        assert reply.status_code == 401, (bad, reply.status_code, reply.text)
        assert reply.json()["code"] == "invalid_token", reply.text
    # The genuine token still works: the 401s above are the forgeries', not the route's.
    assert otpd.current_user("rs", token).status_code == 200
    # alg none on the HS256 app too.
    hs_token, _ = otpd.sign_in("hs")
    head = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "hs-1"}).encode())
    assert otpd.current_user("hs", f"{head}.{hs_token.split('.')[1]}.").status_code == 401


def expect_raises(error: type[BaseException], call) -> None:
    try:
        call()
    except error:
        return
    raise AssertionError(f"expected {error.__name__}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--keys", required=True, type=Path, help="the directory of the run's private key files")
    arguments = parser.parse_args()
    otpd = Otpd(arguments.base_url, arguments.log, arguments.keys)
    tests = [(name, test) for name, test in globals().items() if name.startswith("test_") and callable(test)]
    failed = 0
    for name, test in tests:
        try:
            test(otpd)
            print(f"ok    {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then the run fails
            failed += 1
            print(f"FAIL  {name}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
