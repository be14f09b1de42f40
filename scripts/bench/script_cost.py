#!/usr/bin/env python3
"""What each hot Lua script costs Redis, in instructions per call, counted by callgrind.

    script_cost.py OTPD_BINARY REDIS_PORT CALLGRIND_PID [CALLS]

Redis runs under `valgrind --tool=callgrind` (scripts/script-cost.sh starts it). For each script,
CALLS calls over distinct keys shaped like otpd's (users, OTPs, client counters) are streamed
pipelined by one client (`redis-cli --pipe`); callgrind's counters are zeroed before and dumped
after, so a row is every instruction Redis ran for those calls — reading and parsing them,
the Lua, the commands the script calls, the replies — divided by the calls. Unlike time, the
count does not move with what else the machine is doing, so a change to a script shows as
the instructions it saved, exactly. The text each script runs comes from `otpd lua NAME`.
"""
import glob
import os
import re
import subprocess
import sys

otpd, port, callgrind_pid = sys.argv[1], sys.argv[2], sys.argv[3]
CALLS = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
HASH = "h" * 32  # a code hash (32 bytes, as otpd's)
WRONG = "w" * 32


def cli(*args):
    args = [a if isinstance(a, bytes) else str(a) for a in args]
    return subprocess.run(["redis-cli", "-p", port, *args], capture_output=True).stdout


def encode(command):
    out = [b"*%d\r\n" % len(command)]
    for value in command:
        value = value if isinstance(value, bytes) else str(value).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(out)


def stream(commands):
    done = subprocess.run(["redis-cli", "-p", port, "--pipe"], input=b"".join(map(encode, commands)), capture_output=True)
    if done.returncode != 0:
        sys.exit(f"script_cost.py: Redis answered errors: {done.stdout.decode()[-500:]}")


def lua(name, *option):
    return subprocess.run([otpd, "lua", name, *option], capture_output=True, check=True).stdout


def counted(commands):
    """Instructions Redis ran for `commands`, per command."""
    subprocess.run(["callgrind_control", "-z", callgrind_pid], capture_output=True, check=True)
    stream(commands)
    before = set(glob.glob(DUMPS))
    subprocess.run(["callgrind_control", "-d", callgrind_pid], capture_output=True, check=True)
    dump = max(set(glob.glob(DUMPS)) - before, key=os.path.getmtime)
    total = int(re.search(r"^(?:totals|summary): (\d+)", open(dump).read(), re.M).group(1))
    os.remove(dump)
    return total / len(commands)


def calls(name, values):
    """EVALSHA of script `name` once for each dict of values, by the names it declares."""
    sha = cli("SCRIPT", "LOAD", lua(name)).strip().decode()
    keys = lua(name, "--keys").decode().split()
    arguments = lua(name, "--arguments").decode().split()
    return [["EVALSHA", sha, len(keys)] + [v[k] for k in keys] + [v[a] for a in arguments] for v in values]


def users():
    """CALLS active phone users, each with a pending OTP whose code hash is HASH."""
    cli("FLUSHALL")
    setup = []
    for i in range(CALLS):
        setup.append(["HSET", f"b:{{u{i}}}:user", "id", f"u{i}", "phone", f"+1555{i:07d}", "first_name", "",
                      "last_name", "", "status", "active", "created_at", "1764000000"])
        setup.append(["HSET", f"b:{{u{i}}}:otp:a", "i", "aX", "h", HASH, "a", "0"])
    stream(setup)


LIMITS = dict(clock="", max_attempts=5, failures_per_hour=1000000, sends_per_hour=1000000, max_in_a_row=1000000,
              lockout_ms=900000, refresh_ttl_s=2592000, session_max_s=7776000, proof_hash="", password_hash="")


def activation(i, code):
    return dict(LIMITS, otp_key=f"b:{{u{i}}}:otp:a", own_quota_key=f"b:{{u{i}}}:q", user_key=f"b:{{u{i}}}:user",
                token_key=f"b:{{u{i}}}:rt:t{i}", family_key=f"b:{{u{i}}}:rf:f{i}", otp_suffix="aX", code_hash=code,
                family_id=f"f{i}", user_id=f"u{i}")


def send(i):
    return dict(clock="", mode="login", channel="sms", ttl_ms=3600000, cooldown_ms=0, sends_per_hour=1000000,
                idempotent="0", identifier_field="phone", first_name="", last_name="", unverified_ttl_ms=86400000,
                telegram_gateway_allowed="0", user_key=f"b:{{u{i}}}:user", otp_key=f"b:{{u{i}}}:otp:a",
                own_quota_key=f"b:{{u{i}}}:q", idempotency_key=f"b:{{u{i}}}:idem", otp_suffix="aY", code_hash=HASH,
                user_id=f"u{i}", identifier=f"+1555{i:07d}")


def counter(i):
    # 50 clients: most calls find their counter written this hour already, as under load
    return dict(clock="", counter_key=f"b:{{ip{i % 50}}}:c", limit=1000000000)


DUMPS = f"/tmp/otpd-script-cost.{port}.out*"
rows = []
empty = cli("SCRIPT", "LOAD", "return 1").strip().decode()
rows.append(("EVALSHA of `return 1` (no keys, no arguments): the floor of any script call",
             counted([["EVALSHA", empty, 0]] * CALLS)))
users()
rows.append(("activate, wrong code", counted(calls("activate", [activation(i, WRONG) for i in range(CALLS)]))))
users()
rows.append(("activate, right code", counted(calls("activate", [activation(i, HASH) for i in range(CALLS)]))))
rows.append(("hourlyCounter (a client's unit taken)", counted(calls("hourlyCounter", [counter(i) for i in range(CALLS)]))))
rows.append(("giveBack (the unit given back)", counted(calls("giveBack", [counter(i) for i in range(CALLS)]))))
users()
rows.append(("send (a login's code stored)", counted(calls("send", [send(i) for i in range(CALLS)]))))
print("| script call | Redis instructions per call |")
print("|---|---:|")
for label, value in rows:
    print(f"| {label} | {value:,.0f} |")
