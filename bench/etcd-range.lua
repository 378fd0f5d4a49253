-- wrk script: etcd v3 range of the key "bench" through its HTTP gateway
wrk.method = "POST"
wrk.body = '{"key":"YmVuY2g="}'
wrk.headers["Content-Type"] = "application/json"
