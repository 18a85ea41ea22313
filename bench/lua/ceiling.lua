wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"phone_number": "254712345678", "amount": 100}'
wrk.path = "/echo"
