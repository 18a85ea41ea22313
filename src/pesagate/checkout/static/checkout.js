/* The express page (docs: README "Hosted checkout"). One push per attempt: the Pay button is
   disabled at once and each attempt carries its own Idempotency-Key; a reload resumes the
   attempt the server shows in flight instead of pushing again. States are polled with the
   session's signature; the result is posted to the embedding page (IntaSend's envelope) at
   the session's own `host` origin, never "*". */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("checkout-data").textContent);
  var API = "/api/v1";
  var STATUS_ENVELOPE = "intasend-status-update-cdrtl";
  var CLOSE_ENVELOPE = "intasend-close-modal-cdrtl";
  var embedded = window.parent !== window;
  var signature = data.signature;
  var attempt = null; // {key, phone, invoiceId}
  var pollTimer = null;
  var countdownTimer = null;

  var REASONS = {
    "1032": "You cancelled the M-Pesa prompt.",
    "2001": "The M-Pesa PIN entered was wrong.",
    "1": "Your M-Pesa balance is not enough for this payment.",
    "1037": "Your phone did not answer the M-Pesa prompt in time. Check it is on and has signal.",
    "1019": "The M-Pesa prompt expired before it was answered.",
    "1001": "Another M-Pesa payment is in progress on this phone. Wait a minute and try again.",
    "1025": "M-Pesa could not send the prompt. Try again.",
    "9999": "M-Pesa could not send the prompt. Try again.",
    "NO_RESULT": "M-Pesa never confirmed this payment, so it was not taken.",
    "PUSH_NOT_SENT": "We could not reach M-Pesa. Try again in a moment."
  };

  function $(id) { return document.getElementById(id); }

  function show(view) {
    ["form", "waiting", "success", "failed", "paid"].forEach(function (name) {
      $("view-" + name).hidden = name !== view;
    });
  }

  function money(value) {
    var parts = String(value).split(".");
    return data.currency + " " + Number(parts[0]).toLocaleString("en-US") + "." + (parts[1] || "00");
  }

  function normalisePhone(raw) {
    var digits = String(raw || "").replace(/[\s\-()]/g, "");
    var match = /^(?:\+?254|0)([17][0-9]{8})$/.exec(digits);
    return match ? "254" + match[1] : null;
  }

  function localPhone(msisdn) { return msisdn ? "0" + msisdn.slice(3) : ""; }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function reasonFor(invoice) {
    var code = invoice.failed_code || "";
    if (REASONS[code]) { return REASONS[code]; }
    if (/1001$/.test(code)) { return REASONS["1001"]; }
    return invoice.failed_reason ? "M-Pesa said: " + invoice.failed_reason : "The payment did not go through.";
  }

  function post(message) {
    if (!embedded || !data.host) { return; }
    message.identitier = message.identitier || STATUS_ENVELOPE;
    window.parent.postMessage({ message: message }, data.host);
  }

  function envelope(invoice, state) {
    return {
      tracking_id: invoice.invoice_id, invoice_id: invoice.invoice_id, checkout_id: data.checkout_id,
      state: state, provider: "M-PESA", value: invoice.value, charges: invoice.charges,
      net_amount: invoice.net_amount, currency: data.currency, account: invoice.account,
      api_ref: data.api_ref, host: data.host, mpesa_reference: invoice.mpesa_reference || null,
      failed_reason: invoice.failed_reason || null, failed_code: invoice.failed_code || null,
      created_at: invoice.created_at, updated_at: invoice.updated_at
    };
  }

  function stopTimers() {
    clearTimeout(pollTimer); pollTimer = null;
    clearInterval(countdownTimer); countdownTimer = null;
  }

  function startCountdown(seconds) {
    var left = Math.max(0, Math.round(seconds));
    function tick() {
      if (left <= 0) {
        clearInterval(countdownTimer);
        $("waiting-title").textContent = "Confirming your payment";
        $("waiting-text").hidden = true;
        $("confirming-text").hidden = false;
        $("countdown-line").hidden = true;
        return;
      }
      $("countdown").textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
      left -= 1;
    }
    $("waiting-title").textContent = "Check your phone";
    $("waiting-text").hidden = false;
    $("confirming-text").hidden = true;
    $("countdown-line").hidden = false;
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  function wait(invoiceId, phone, secondsLeft) {
    attempt = attempt || {};
    attempt.invoiceId = invoiceId;
    $("waiting-phone").textContent = phone;
    show("waiting");
    startCountdown(secondsLeft);
    poll(0);
  }

  function poll(delay) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(function () {
      fetch(API + "/payment/status/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ invoice_id: attempt.invoiceId, checkout_id: data.checkout_id, signature: signature })
      }).then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      }).then(function (status) {
        settle(status.invoice);
      }).catch(function () {
        poll(data.poll_ms * 2); // a network blip is not a result: keep asking
      });
    }, delay);
  }

  function settle(invoice) {
    if (invoice.state === "COMPLETE") { return succeed(invoice); }
    if (invoice.state === "FAILED") { return fail(invoice); }
    poll(data.poll_ms);
  }

  function succeed(invoice) {
    stopTimers();
    $("success-amount").textContent = money(invoice.value);
    $("receipt").textContent = invoice.mpesa_reference || "";
    show("success");
    post(envelope(invoice, "COMPLETE"));
    if (data.redirect_url && !embedded) {
      var target = new URL(data.redirect_url);
      target.searchParams.set("invoice_id", invoice.invoice_id);
      target.searchParams.set("state", invoice.state);
      target.searchParams.set("checkout_id", data.checkout_id);
      $("redirect-note").hidden = false;
      setTimeout(function () { window.location.assign(target.toString()); }, 1500);
    }
  }

  function fail(invoice) {
    stopTimers();
    $("failed-reason").textContent = reasonFor(invoice);
    show("failed");
    post(envelope(invoice, "FAILED"));
    attempt = null;
  }

  function clearErrors() {
    ["phone-error", "amount-error", "form-error"].forEach(function (id) { if ($(id)) { $(id).textContent = ""; } });
    $("phone").removeAttribute("aria-invalid");
    if ($("amount")) { $("amount").removeAttribute("aria-invalid"); }
  }

  function fieldError(field, message) {
    var target = $(field + "-error");
    if (target && $(field)) {
      target.textContent = message;
      $(field).setAttribute("aria-invalid", "true");
    } else {
      $("form-error").textContent = message;
    }
  }

  function showErrors(body) {
    if (body && typeof body.detail === "string") { return fieldError("form", body.detail); }
    Object.keys(body || {}).forEach(function (field) {
      var messages = [].concat(body[field]).join(" ");
      fieldError(field === "phone_number" ? "phone" : field, messages);
    });
  }

  function send(button) {
    fetch(API + "/payment/collection/", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": attempt.key },
      body: JSON.stringify(attempt.body)
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; },
        function () { return { status: response.status, body: {} }; });
    }).then(function (answer) {
      if (answer.status === 201 || answer.status === 200) {
        $("form-error").textContent = "";
        signature = answer.body.signature || signature;
        post(envelope(answer.body.invoice, "IN-PROGRESS"));
        if (answer.body.invoice.state === "FAILED") { return fail(answer.body.invoice); }
        return wait(answer.body.invoice.invoice_id, localPhone(attempt.body.phone_number), data.prompt_ttl_s);
      }
      if (answer.status === 409) { // the same attempt is still being sent: ask again
        return setTimeout(function () { send(button); }, 1000);
      }
      var detail = answer.body && typeof answer.body.detail === "string" ? answer.body.detail : "";
      if (answer.status === 400 && /already paid|still waiting/.test(detail)) {
        return window.location.reload(); // the page shows the session as it now is
      }
      button.disabled = false;
      attempt = null;
      if (answer.status === 429) { return fieldError("form", "Too many attempts. Wait a minute and try again."); }
      showErrors(answer.body);
    }).catch(function () {
      // The push may have been sent: ask again with the same key, which cannot push twice.
      attempt.failures = (attempt.failures || 0) + 1;
      if (attempt.failures <= 5) {
        fieldError("form", "We could not reach the payment server; trying again\u2026");
        return setTimeout(function () { send(button); }, 2000);
      }
      button.disabled = false;
      attempt = null;
      fieldError("form", "We could not reach the payment server. Check your connection and try again.");
    });
  }

  function pay(event) {
    event.preventDefault();
    var button = $("pay");
    if (button.disabled || attempt) { return; } // one push per attempt, whatever the clicks
    clearErrors();
    var msisdn = normalisePhone($("phone").value);
    var ok = true;
    if (!msisdn) {
      fieldError("phone", "Enter a Safaricom number such as 0712 345 678 or +254 712 345 678.");
      ok = false;
    }
    var amount = null;
    if ($("amount")) {
      amount = $("amount").value.trim();
      if (!/^[0-9]+(\.[0-9]{1,2})?$/.test(amount) || Number(amount) < 1) {
        fieldError("amount", "Enter an amount of at least " + data.currency + " 1.");
        ok = false;
      }
    }
    if (!ok) { return; }
    button.disabled = true;
    var body = { method: "M-PESA", phone_number: msisdn, checkout_id: data.checkout_id, signature: signature };
    if (amount !== null) { body.amount = amount; }
    attempt = { key: newKey(), body: body };
    send(button);
  }

  function retry() {
    attempt = null;
    $("pay").disabled = false;
    show("form");
    $("phone").focus();
  }

  function start() {
    $("pay-form").addEventListener("submit", pay);
    $("retry").addEventListener("click", retry);
    if ($("amount")) {
      $("amount").addEventListener("input", function () {
        var typed = $("amount").value.trim();
        $("pay").textContent = /^[0-9]+(\.[0-9]{1,2})?$/.test(typed) && Number(typed) > 0
          ? "Pay " + money(Number(typed).toFixed(2)) : "Pay";
      });
    }
    if (embedded) {
      document.documentElement.classList.add("embedded");
      $("close").hidden = false;
      $("close").addEventListener("click", function () { post({ identitier: CLOSE_ENVELOPE }); });
    }
    $("phone").value = data.phone || "";
    var latest = data.latest;
    if (data.paid && latest) {
      $("paid-receipt").textContent = latest.mpesa_reference || "";
      $("paid-receipt-line").hidden = !latest.mpesa_reference;
      return show("paid");
    }
    if (latest && (latest.state === "PENDING" || latest.state === "PROCESSING")) {
      attempt = { key: null, body: null };
      $("pay").disabled = true;
      return wait(latest.invoice_id, latest.phone, latest.seconds_left); // a reload: resume
    }
    show("form");
  }

  start();
})();
