/* pesagate-inline.js: a drop-in for IntaSend's inline web SDK (v2 `setup`/`run`, v4
   `new IntaSend({...}).on(state, cb)`), pointed at the pesagate that serves this file.
   A shop switches by changing only its <script src>. See README "Hosted checkout".

   Unlike the original it accepts state messages only from pesagate's origin and from the
   iframe it created, and it removes only the elements it created. */
(function () {
  "use strict";
  var script = document.currentScript;
  var ORIGIN = new URL(script ? script.src : "/", window.location.href).origin;
  var STATUS_ENVELOPE = "intasend-status-update-cdrtl";
  var CLOSE_ENVELOPE = "intasend-close-modal-cdrtl";
  var BUTTONS = ".tp_button, .intaSendPayButton";
  // data-* names a button may carry (as IntaSend documents them), sent as session fields.
  var OPTIONS = ["amount", "currency", "email", "first_name", "last_name", "phone_number",
    "api_ref", "comment", "method", "mobile_tarrif", "wallet_id", "country", "card_tarrif",
    "redirect_url", "callback_url"];
  var current = null; // the instance whose buttons are bound (the last one made)
  var modal = null;   // {overlay, frame, instance}

  function PesaGate(options) {
    if (!(this instanceof PesaGate)) { return new PesaGate(options); }
    this.options = options || {};
    this.handlers = {};
    current = this;
  }

  PesaGate.prototype.on = function (state, callback) {
    (this.handlers[state] = this.handlers[state] || []).push(callback);
    return this;
  };

  PesaGate.prototype.run = function (details) {
    open(this, details || {});
    return this;
  };

  PesaGate.prototype.setup = function (options) {
    this.options = options || {};
    current = this;
    return this;
  };

  PesaGate.prototype.emit = function (state, message) {
    (this.handlers[state] || []).forEach(function (callback) {
      try { callback(message); } catch (error) { setTimeout(function () { throw error; }); }
    });
  };

  // v2: window.IntaSend.setup({publicAPIKey, redirectURL, live}); window.IntaSend.run({...})
  PesaGate.setup = function (options) { return new PesaGate(options); };
  PesaGate.run = function (details) { return (current || new PesaGate({})).run(details); };

  function datasetOf(element) {
    var options = {};
    OPTIONS.forEach(function (name) {
      var value = element.getAttribute("data-" + name) || element.getAttribute("data-" + name.replace(/_/g, "-"));
      if (value !== null && value !== "") { options[name] = value; }
    });
    return options;
  }

  function open(instance, details) {
    close();
    var params = new URLSearchParams();
    Object.keys(details).forEach(function (name) {
      if (details[name] !== undefined && details[name] !== null) { params.set(name, String(details[name])); }
    });
    params.set("public_key", instance.options.publicAPIKey || "");
    params.set("host", window.location.origin);
    if (instance.options.redirectURL && !params.has("callback_url")) {
      params.set("callback_url", instance.options.redirectURL);
    }
    var overlay = document.createElement("div");
    overlay.setAttribute("data-pesagate", "overlay");
    overlay.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(10,20,14,.55);" +
      "display:flex;align-items:center;justify-content:center";
    var frame = document.createElement("iframe");
    frame.setAttribute("data-pesagate", "checkout");
    frame.setAttribute("title", "Pay with M-Pesa");
    frame.setAttribute("allow", "clipboard-write");
    var narrow = window.innerWidth < 600;
    frame.style.cssText = "border:0;background:#fff;" + (narrow
      ? "width:100%;height:100%"
      : "width:380px;height:560px;max-height:95vh;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.3)");
    frame.src = ORIGIN + "/checkout/embed/?" + params.toString();
    overlay.appendChild(frame);
    overlay.addEventListener("click", function (event) { if (event.target === overlay) { close(); } });
    document.body.appendChild(overlay);
    modal = { overlay: overlay, frame: frame, instance: instance };
  }

  function close() {
    if (modal && modal.overlay.parentNode) { modal.overlay.parentNode.removeChild(modal.overlay); }
    modal = null;
  }

  window.addEventListener("message", function (event) {
    // Only pesagate's own page, in the iframe this script made, may speak.
    if (event.origin !== ORIGIN || !modal || event.source !== modal.frame.contentWindow) { return; }
    var message = event.data && event.data.message;
    if (!message || typeof message !== "object") { return; }
    if (message.identitier === CLOSE_ENVELOPE) { return close(); }
    if (message.identitier !== STATUS_ENVELOPE || typeof message.state !== "string") { return; }
    var instance = modal.instance;
    instance.emit(message.state, message);
    var redirect = instance.options.redirectURL;
    if (message.state === "COMPLETE" && redirect) {
      setTimeout(function () { window.location.href = redirect; }, 1500);
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    var custom = current && current.options.element; // v2: a class name, like "tp_button"
    if (custom && !/^[.#[]/.test(custom)) { custom = "." + custom; }
    var selector = custom ? custom + ", " + BUTTONS : BUTTONS;
    var button = target && target.closest ? target.closest(selector) : null;
    if (!button || !current) { return; }
    event.preventDefault();
    open(current, datasetOf(button));
  });

  window.PesaGate = PesaGate;
  window.IntaSend = PesaGate;
  window.KulmiPay = PesaGate;
})();
