"""The workload of scripts/e2e.sh: login flows through nginx against three otpd replicas on
a Redis Cluster, with one otpd replica and then one Redis master killed mid-workload.

Bounded: at most MAX_FLOWS flows and MAX_SECONDS seconds; every request has a timeout.
Prints the figures and exits 1 when a check fails.
"""
import concurrent.futures as futures
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests

BASE = os.environ["E2E_BASE_URL"]                      # nginx
REPLICAS = os.environ["E2E_REPLICAS"].split(",")       # port:pid:logfile of each otpd
CLUSTER_DIR = os.environ["E2E_CLUSTER_DIR"]
CLUSTER_NODES = os.environ["E2E_CLUSTER_NODES"].split(",")
CONCURRENCY = int(os.environ.get("E2E_CONCURRENCY", "16"))
FLOWS_PER_PHASE = int(os.environ.get("E2E_FLOWS_PER_PHASE", "1000"))
MAX_FLOWS = int(os.environ.get("E2E_MAX_FLOWS", "6000"))
MAX_SECONDS = float(os.environ.get("E2E_MAX_SECONDS", "240"))
TIMEOUT = 10

started = time.monotonic()
failures = []  # failed checks


def check(ok, text):
    print(("PASS  " if ok else "FAIL  ") + text, flush=True)
    if not ok:
        failures.append(text)


# ---------------------------------------------------------------- codes from the replicas' logs

class CodeLog:
    """Follows the otpd logs; the `log` gateway writes each code with its otp_id."""
    pattern = re.compile(r"otp_id=(\S+).*\[log gateway\] code (\d+)")

    def __init__(self, paths):
        self.paths = paths
        self.offsets = {p: 0 for p in paths}
        self.codes = {}
        self.lock = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def follow(self):
        while not self.stopped:
            for path in self.paths:
                try:
                    with open(path, "rb") as f:
                        f.seek(self.offsets[path])
                        data = f.read()
                except FileNotFoundError:
                    continue
                end = data.rfind(b"\n") + 1
                self.offsets[path] += end
                found = {}
                for line in data[:end].decode(errors="replace").splitlines():
                    m = self.pattern.search(line)
                    if m:
                        found[m.group(1)] = m.group(2)
                if found:
                    with self.lock:
                        self.codes.update(found)
                        self.lock.notify_all()
            time.sleep(0.01)

    def code(self, otp_id, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while otp_id not in self.codes:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)
            return self.codes[otp_id]


codes = CodeLog([r.split(":", 2)[2] for r in REPLICAS])
local = threading.local()
counts_lock = threading.Lock()
requests_total = 0
requests_failed = 0  # 5xx or no answer


def session():
    if not hasattr(local, "session"):
        local.session = requests.Session()
    return local.session


def call(method, path, body=None, headers=None):
    global requests_total, requests_failed
    try:
        r = session().request(method, BASE + path, json=body, headers=headers or {}, timeout=TIMEOUT)
        status, payload = r.status_code, (r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else {})
    except requests.RequestException as error:
        status, payload = 0, {"error": str(error)}
    with counts_lock:
        requests_total += 1
        if status == 0 or status >= 500:
            requests_failed += 1
    return status, payload


def client_ip(n):
    return {"X-Forwarded-For": "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)}


# ---------------------------------------------------------------- the checks of the contract

def concurrent_statuses(count, fn):
    with futures.ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(fn, range(count)))


def contract_checks():
    email = "race-%s@example.com" % uuid.uuid4().hex[:8]
    status, body = call("POST", "/v1/apps/e2e/register/otp", {"identifier": email}, client_ip(1))
    otp_id = body.get("otp_id")
    code = codes.code(otp_id) if otp_id else None
    statuses = concurrent_statuses(100, lambda i: call("POST", "/v1/apps/e2e/otp/activate", {"otp_id": otp_id, "otp": code})[0])
    check(statuses.count(200) == 1,
          "100 concurrent activations of one OTP: %d x 200, %d x 404" % (statuses.count(200), statuses.count(404)))

    email = "guess-%s@example.com" % uuid.uuid4().hex[:8]
    status, body = call("POST", "/v1/apps/e2e/register/otp", {"identifier": email}, client_ip(2))
    otp_id = body.get("otp_id")
    code = codes.code(otp_id) or "000000"
    wrong = lambda i: call("POST", "/v1/apps/e2e/otp/activate",
                           {"otp_id": otp_id, "otp": "%06d" % ((int(code) + 1 + i) % 1000000)})[0]
    statuses = concurrent_statuses(50, wrong)
    right = call("POST", "/v1/apps/e2e/otp/activate", {"otp_id": otp_id, "otp": code})[0]
    check(statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 50 and right == 429,
          "50 concurrent wrong guesses, max_attempts 5: %d x 401, %d x 429; the right code afterwards: %d"
          % (statuses.count(401), statuses.count(429), right))

    email = "quota-%s@example.com" % uuid.uuid4().hex[:8]
    statuses = concurrent_statuses(30, lambda i: call("POST", "/v1/apps/quota/register/otp", {"identifier": email}, client_ip(3))[0])
    check(statuses.count(201) == 3 and statuses.count(429) == 27,
          "30 concurrent sends to one identifier, quota 3/hour: %d x 201, %d x 429" % (statuses.count(201), statuses.count(429)))

    statuses = concurrent_statuses(20, lambda i: call(
        "POST", "/v1/apps/ipquota/register/otp", {"identifier": "ip-%d-%s@example.com" % (i, uuid.uuid4().hex[:6])}, client_ip(4))[0])
    check(statuses.count(201) == 4 and statuses.count(429) == 16,
          "20 concurrent sends from one client IP (X-Forwarded-For via nginx), quota 4/hour: %d x 201, %d x 429"
          % (statuses.count(201), statuses.count(429)))


# ---------------------------------------------------------------- full login flows

class Flow:
    def __init__(self, n):
        self.n = n
        self.ok = False
        self.failed_at = None
        self.status = None
        self.otp_id = None
        self.access = None
        self.started = time.monotonic()
        self.ended = None


def login_flow(n):
    flow = Flow(n)
    email = "flow-%d-%s@example.com" % (n, uuid.uuid4().hex[:8])
    ip = client_ip(1000 + n)
    status, body = call("POST", "/v1/apps/e2e/register/otp", {"identifier": email}, ip)
    if status != 201:
        flow.failed_at, flow.status = "register", status
    else:
        flow.otp_id = body["otp_id"]
        code = codes.code(flow.otp_id)
        status, body = call("POST", "/v1/apps/e2e/otp/activate", {"otp_id": flow.otp_id, "otp": code}, ip)
        if status != 200:
            flow.failed_at, flow.status = "activate", status
        else:
            refresh = body["auth_result"]["refresh_token"]
            status, body = call("POST", "/v1/apps/e2e/tokens/refresh", {"refresh_token": refresh}, ip)
            if status != 200:
                flow.failed_at, flow.status = "refresh", status
            else:
                flow.access = body["auth_result"]["auth_token"]
                flow.ok = True
    flow.ended = time.monotonic()
    return flow


def readiness(port):
    try:
        return requests.get("http://127.0.0.1:%s/readyz" % port, timeout=2).status_code
    except requests.RequestException:
        return 0


def cluster_masters():
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", CLUSTER_NODES[0].split(":")[1], "cluster", "nodes"],
                         capture_output=True, text=True, timeout=5).stdout
    masters = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 8 and "master" in fields[2] and "fail" not in fields[2]:
            masters.append(fields[1].split("@")[0])
    return masters


def main():
    print("==> contract checks through nginx", flush=True)
    contract_checks()

    print("==> login flows: register -> code from the log -> activate -> refresh (concurrency %d)" % CONCURRENCY, flush=True)
    flows = []
    events = {}
    alive = list(REPLICAS)
    n = 0
    phase = 1
    recovered_at = None
    with futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        pending = set()
        while n < MAX_FLOWS and time.monotonic() - started < MAX_SECONDS:
            while len(pending) < CONCURRENCY * 2 and n < MAX_FLOWS:
                pending.add(pool.submit(login_flow, n))
                n += 1
            done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
            flows.extend(f.result() for f in done)
            if phase == 1 and len(flows) >= FLOWS_PER_PHASE:
                victim = alive.pop(1)
                port, pid, _ = victim.split(":", 2)
                os.kill(int(pid), signal.SIGKILL)
                events["replica_killed"] = time.monotonic()
                print("    flow %d: otpd replica on :%s killed (SIGKILL)" % (len(flows), port), flush=True)
                phase = 2
            elif phase == 2 and len(flows) >= 2 * FLOWS_PER_PHASE:
                master = cluster_masters()[0]
                port = master.split(":")[1]
                with open(os.path.join(CLUSTER_DIR, port, "redis.pid")) as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
                events["master_killed"] = time.monotonic()
                print("    flow %d: Redis master %s killed (SIGKILL)" % (len(flows), master), flush=True)
                phase = 3
            elif phase == 3:
                if recovered_at is None:
                    statuses = [readiness(r.split(":")[0]) for r in alive]
                    if all(s == 200 for s in statuses):
                        recovered_at = time.monotonic()
                        events["recovered"] = recovered_at
                        events["flows_at_recovery"] = len(flows)
                        print("    flow %d: every live replica ready again, %.1f s after the kill"
                              % (len(flows), recovered_at - events["master_killed"]), flush=True)
                elif len(flows) >= events["flows_at_recovery"] + FLOWS_PER_PHASE:
                    break
        for f in futures.as_completed(pending):
            flows.append(f.result())
    elapsed = time.monotonic() - started

    print("==> checks", flush=True)
    completed = [f for f in flows if f.ok]
    # Every completed login is valid: its access token works on any replica.
    def valid(flow):
        return call("GET", "/v1/apps/e2e/currentuser", headers={"Authorization": "Bearer " + flow.access})[0] == 200
    with futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        validity = list(pool.map(valid, completed))
    check(all(validity), "every completed login is valid: %d of %d access tokens accepted" % (sum(validity), len(completed)))
    ids = [f.otp_id for f in completed]
    check(len(ids) == len(set(ids)), "no OTP activated twice: %d activations, %d distinct otp_ids" % (len(ids), len(set(ids))))
    sample = completed[:100]
    again = concurrent_statuses(len(sample), lambda i: call(
        "POST", "/v1/apps/e2e/otp/activate", {"otp_id": sample[i].otp_id, "otp": codes.code(sample[i].otp_id)})[0])
    check(all(s == 404 for s in again), "a used code activates nothing: %d of %d answered 404" % (again.count(404), len(again)))

    def window(start, end):
        return [f for f in flows if f.ended >= start and f.started <= end]

    killed = events.get("replica_killed")
    master_killed = events.get("master_killed")
    if killed is not None:
        around = [f for f in window(killed, master_killed or time.monotonic()) if not f.ok and f.status in (0, 502)]
        check(len(around) <= CONCURRENCY,
              "otpd replica killed: nginx routed around it; %d flows lost a request in flight on it (502), at most %d may"
              % (len(around), CONCURRENCY))
    if master_killed is not None:
        check(recovered_at is not None, "Redis master killed: every live replica ready again without a restart")
        if recovered_at is not None:
            late = [f for f in flows if f.started > recovered_at + 1 and not f.ok]
            check(not late, "after recovery (+1 s) every flow succeeds: %d failed" % len(late))
            during = [f for f in window(master_killed, recovered_at) if not f.ok]
            bad = [f for f in during if f.status not in (503, None)]
            check(not bad, "during the failover failed flows answered 503 only: %d failed, statuses %s"
                  % (len(during), sorted({f.status for f in during})))

    failed_flows = [f for f in flows if not f.ok]
    by_status = {}
    for f in failed_flows:
        by_status["%s %s" % (f.failed_at, f.status)] = by_status.get("%s %s" % (f.failed_at, f.status), 0) + 1
    figures = {
        "seconds": round(elapsed, 1),
        "requests": requests_total,
        "failed_requests": requests_failed,
        "flows": len(flows),
        "flows_completed": len(completed),
        "flows_failed": len(failed_flows),
        "flows_failed_by_step_and_status": by_status,
        "flows_per_second": round(len(flows) / elapsed, 1),
        "seconds_to_recover_after_master_kill": round(recovered_at - master_killed, 2) if recovered_at and master_killed else None,
    }
    # What the live replicas counted: slot-map refreshes and redirects (none expected: no
    # slot moved, a failover is found by a refresh, not by MOVED).
    cluster_metrics = {}
    for replica in alive:
        try:
            text = requests.get("http://127.0.0.1:%s/metrics" % replica.split(":")[0], timeout=2).text
        except requests.RequestException:
            continue
        for line in text.splitlines():
            if line.startswith(("otpd_redis_cluster_map_refreshes_total", "otpd_redis_redirects_total", "otpd_redis_errors_total")):
                name, value = line.rsplit(" ", 1)
                cluster_metrics[name] = cluster_metrics.get(name, 0) + int(float(value))
    figures["metrics_of_the_live_replicas"] = cluster_metrics
    print("==> figures")
    print(json.dumps(figures, indent=2))
    codes.stopped = True
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
