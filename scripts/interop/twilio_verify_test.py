"""Twilio Verify v2 on otpd, driven by Twilio's own Python SDK (`twilio` from PyPI).

Run by scripts/interop-twilio.sh against a running otpd whose gateways are the development
`log` gateway: the codes are read from otpd's log. Environment: OTPD_URL, OTPD_LOG, and the
SIDs and secrets of the runner's configuration (TV_ACCOUNT, TV_TOKEN, TV_KEY, TV_KEY_SECRET,
TV_SERVICE, TV_IP_SERVICE).
"""

import os
import re
import threading
import time
import unittest
import uuid

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

URL = os.environ["OTPD_URL"]
LOG = os.environ["OTPD_LOG"]
ACCOUNT = os.environ["TV_ACCOUNT"]
TOKEN = os.environ["TV_TOKEN"]
KEY = os.environ["TV_KEY"]
KEY_SECRET = os.environ["TV_KEY_SECRET"]
SERVICE = os.environ["TV_SERVICE"]
IP_SERVICE = os.environ["TV_IP_SERVICE"]


def client(username=ACCOUNT, password=TOKEN):
    """A Twilio client whose Verify domain is otpd: the one line a backend changes."""
    c = Client(username, password, account_sid=ACCOUNT)
    c.verify.base_url = URL
    return c


def service(c=None, sid=SERVICE):
    return (c or client()).verify.v2.services(sid)


_counter = [0]


def new_phone():
    """A fresh E.164 number per test (+1 500 555 xxxx), so tests never share a `To`."""
    _counter[0] += 1
    return "+1500555%04d" % (_counter[0] + (os.getpid() % 50) * 100)


def new_email():
    return "t-%s@example.com" % uuid.uuid4().hex[:12]


def deliveries(to):
    """The texts the log gateway delivered to `to`, in order."""
    texts = []
    with open(LOG, encoding="utf-8", errors="replace") as log:
        for line in log:
            if "[log gateway] " in line and (" to=%s " % to) in line:
                texts.append(line.split("[log gateway] ", 1)[1].strip())
    return texts


def wait_deliveries(to, count=1):
    """The texts delivered to `to` once there are `count` of them (otpd's log is written
    behind the answer); fails after 5 s."""
    for _ in range(100):
        texts = deliveries(to)
        if len(texts) >= count:
            return texts
        time.sleep(0.05)
    raise AssertionError("%d message(s) expected to %s, got %d" % (count, to, len(deliveries(to))))


def last_code(to, count=1):
    text = wait_deliveries(to, count)[-1]
    match = re.search(r"\b(\d{6})\b", text)
    if not match:
        raise AssertionError("no code in the message to %s" % to)
    return match.group(1)


class TwilioVerifyInterop(unittest.TestCase):
    def assertTwilioError(self, raised, status, code, mentions=None):
        error = raised.exception
        self.assertIsInstance(error, TwilioRestException)
        self.assertEqual(error.status, status, error.msg)
        self.assertEqual(error.code, code, error.msg)
        if mentions:
            self.assertIn(mentions, error.msg)

    # sends

    def test_send_by_sms_call_and_email(self):
        for channel, to in (("sms", new_phone()), ("call", new_phone()), ("email", new_email())):
            v = service().verifications.create(to=to, channel=channel)
            self.assertTrue(re.fullmatch(r"VE[0-9a-f]{32}", v.sid), v.sid)
            self.assertEqual((v.status, v.channel, v.to, v.valid), ("pending", channel, to, False))
            self.assertEqual(v.service_sid, SERVICE)
            self.assertEqual(v.account_sid, ACCOUNT)
            self.assertEqual(len(v.send_code_attempts), 1)
            self.assertIsNotNone(v.date_created)
            last_code(to)

    def test_friendly_name_and_locale(self):
        to = new_phone()
        service().verifications.create(to=to, channel="sms", custom_friendly_name="Acme Shop", locale="fr")
        text = wait_deliveries(to)[-1]
        self.assertIn("Acme Shop", text)
        self.assertIn("est votre code", text)

    def test_a_resend_keeps_the_sid_and_the_code(self):
        to = new_phone()
        first = service().verifications.create(to=to, channel="sms")
        code = last_code(to)
        second = service().verifications.create(to=to, channel="call")
        self.assertEqual(second.sid, first.sid)
        self.assertEqual([a["channel"] for a in second.send_code_attempts], ["sms", "call"])
        self.assertEqual(last_code(to, count=2), code)
        self.assertEqual(len(deliveries(to)), 2)

    # checks

    def test_check_right_and_wrong(self):
        to = new_phone()
        service().verifications.create(to=to, channel="sms")
        code = last_code(to)
        wrong = "000000" if code != "000000" else "111111"
        check = service().verification_checks.create(to=to, code=wrong)
        self.assertEqual((check.status, check.valid), ("pending", False))
        check = service().verification_checks.create(to=to, code=code)
        self.assertEqual((check.status, check.valid, check.to), ("approved", True, to))

    def test_check_by_verification_sid(self):
        to = new_email()
        v = service().verifications.create(to=to, channel="email")
        check = service().verification_checks.create(verification_sid=v.sid, code=last_code(to))
        self.assertEqual((check.sid, check.status, check.valid), (v.sid, "approved", True))

    def test_max_attempts(self):
        to = new_phone()
        service().verifications.create(to=to, channel="sms")
        code = last_code(to)
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(3):  # the app's otp.max_attempts
            self.assertEqual(service().verification_checks.create(to=to, code=wrong).status, "pending")
        with self.assertRaises(TwilioRestException) as raised:
            service().verification_checks.create(to=to, code=code)
        self.assertTwilioError(raised, 429, 60202)

    def test_approved_then_checked_again_is_404(self):
        to = new_phone()
        service().verifications.create(to=to, channel="sms")
        code = last_code(to)
        self.assertEqual(service().verification_checks.create(to=to, code=code).status, "approved")
        with self.assertRaises(TwilioRestException) as raised:
            service().verification_checks.create(to=to, code=code)
        self.assertTwilioError(raised, 404, 20404)

    def test_twenty_concurrent_right_checks_approve_once(self):
        to = new_phone()
        service().verifications.create(to=to, channel="sms")
        code = last_code(to)
        outcomes = []
        lock = threading.Lock()

        def check():
            try:
                result = service().verification_checks.create(to=to, code=code).status
            except TwilioRestException as error:
                result = error.status
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=check) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(outcomes.count("approved"), 1, outcomes)
        self.assertEqual(outcomes.count(404), 19, outcomes)

    # fetch and update

    def test_fetch(self):
        to = new_email()
        v = service().verifications.create(to=to, channel="email")
        fetched = service().verifications(v.sid).fetch()
        self.assertEqual((fetched.sid, fetched.to, fetched.status, fetched.channel), (v.sid, to, "pending", "email"))

    def test_cancel(self):
        to = new_phone()
        v = service().verifications.create(to=to, channel="sms")
        canceled = service().verifications(v.sid).update(status="canceled")
        self.assertEqual((canceled.sid, canceled.status), (v.sid, "canceled"))
        with self.assertRaises(TwilioRestException) as raised:
            service().verifications(v.sid).fetch()
        self.assertTwilioError(raised, 404, 20404)
        with self.assertRaises(TwilioRestException) as raised:
            service().verification_checks.create(to=to, code=last_code(to))
        self.assertTwilioError(raised, 404, 20404)

    # refusals

    def test_wrong_auth(self):
        with self.assertRaises(TwilioRestException) as raised:
            service(client(ACCOUNT, "wrong-token-0123456789")).verifications.create(to=new_phone(), channel="sms")
        self.assertTwilioError(raised, 401, 20003)
        # An API key, as the SDK sends it, is accepted.
        v = service(client(KEY, KEY_SECRET)).verifications.create(to=new_phone(), channel="sms")
        self.assertEqual(v.status, "pending")

    def test_bad_to_and_unknown_channel(self):
        with self.assertRaises(TwilioRestException) as raised:
            service().verifications.create(to="not-a-number", channel="sms")
        self.assertTwilioError(raised, 400, 60200, "`To`")
        with self.assertRaises(TwilioRestException) as raised:
            service().verifications.create(to=new_phone(), channel="pigeon")
        self.assertTwilioError(raised, 400, 60200, "`Channel`")

    def test_unknown_service(self):
        with self.assertRaises(TwilioRestException) as raised:
            service(sid="VA" + "9" * 32).verifications.create(to=new_phone(), channel="sms")
        self.assertTwilioError(raised, 404, 20404)

    def test_device_ip_quota(self):
        # The second service's app allows 2 sends an hour per client IP.
        for _ in range(2):
            service(sid=IP_SERVICE).verifications.create(to=new_phone(), channel="sms", device_ip="198.51.100.7")
        with self.assertRaises(TwilioRestException) as raised:
            service(sid=IP_SERVICE).verifications.create(to=new_phone(), channel="sms", device_ip="198.51.100.7")
        self.assertTwilioError(raised, 429, 20429)
        v = service(sid=IP_SERVICE).verifications.create(to=new_phone(), channel="sms", device_ip="198.51.100.8")
        self.assertEqual(v.status, "pending")
        # Without DeviceIp no per-IP quota applies.
        for _ in range(3):
            service(sid=IP_SERVICE).verifications.create(to=new_phone(), channel="sms")

    def test_raw_error_bodies_are_twilio_shaped(self):
        base = "%s/v2/Services/%s" % (URL, SERVICE)
        cases = [
            (requests.post(base + "/Verifications", data={"To": "x", "Channel": "sms"}, auth=(ACCOUNT, TOKEN)), 400, 60200),
            (requests.post(base + "/Verifications", data={"To": new_phone(), "Channel": "sms"}, auth=(ACCOUNT, "nope")), 401, 20003),
            (requests.get(base + "/Verifications/VE" + "0" * 32, auth=(ACCOUNT, TOKEN)), 404, 20404),
        ]
        for response, status, code in cases:
            body = response.json()
            self.assertEqual(response.status_code, status, response.text)
            self.assertEqual(set(body), {"code", "message", "more_info", "status"}, response.text)
            self.assertEqual((body["code"], body["status"]), (code, status))
            self.assertEqual(body["more_info"], "https://www.twilio.com/docs/errors/%d" % code)
        self.assertEqual(cases[1][0].headers.get("WWW-Authenticate"), 'Basic realm="Twilio API"')


if __name__ == "__main__":
    unittest.main(verbosity=2)
