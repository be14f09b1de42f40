-- The framework ceiling: POST a small JSON body to the echo route.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"otp_id":"0123456789abcdef01234567.aAAAAAAAAAAAAAAAAAAAAAA","otp":"123456"}'
function response(status, headers, body) count(status) end
