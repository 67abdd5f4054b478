#!/usr/bin/python3
"""A real GStreamer WebRTC client (webrtcbin, libnice, GStreamer's own DTLS
and SRTP) for uringcast's tests, in one of two modes:

  publish URL  WHIP: videotestsrc -> vp8enc -> rtpvp8pay and
               audiotestsrc -> opusenc -> rtpopuspay into a sendonly
               webrtcbin (max-bundle); POST the offer (ICE gathering
               complete, no trickle), set the answer, send for --seconds
               after ICE+DTLS connected, DELETE the session.
  watch URL    WHEP: recvonly VP8 and Opus transceivers; POST the offer, set
               the answer, count what arrives for --seconds after connected:
               video frames out of rtpvp8depay and out of vp8dec, audio
               buffers out of rtpopusdepay and out of opusdec (--no-decode:
               depayload only, for synthetic payloads a decoder would reject);
               DELETE the session.
  check        only verify that Python's gi and every element are there.

SIGTERM or SIGINT end a run early and cleanly (DELETE, then the JSON line).
Prints one JSON line on stdout with what it sent or received (also on
failure, with "error"), and exits non-zero with a clear message on stderr on
any failure: an HTTP status other than 201, an answer with a non-loopback
candidate, no loopback candidate gathered, ICE or DTLS failure, a GStreamer
error on the bus, too few frames (--min-video-frames, --min-audio-buffers),
or the hard time limit (--timeout).

Talks only to loopback: the URL's host must be in 127.0.0.0/8 (or ::1,
localhost); no STUN or TURN server is set, UPnP (SSDP multicast) and ICE-TCP
are off, only loopback-range candidates go into the offer, and the answer's
candidates must be loopback addresses. libnice skips the lo interface, so
the machine needs another interface carrying a 127.x address (the test
makes a veth with 127.0.0.2). Needs no display. Run with Debian's /usr/bin/python3
(python3-gi, gir1.2-gstreamer-1.0, gir1.2-gst-plugins-bad-1.0,
gir1.2-gst-plugins-base-1.0; plugins: gstreamer1.0-plugins-bad,
-plugins-good, -plugins-base, gstreamer1.0-nice).
"""

import argparse
import ctypes
import ipaddress
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VIDEO_CAPS = (
    "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000,"
    "rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true"
)
AUDIO_CAPS = (
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
    "encoding-params=(string)2"
)

# A pad probe on buffers and on buffer lists (payloaders push lists).
BUFFERS = Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST


def log(msg):
    print(f"[gst {ARGS.mode}] {msg}", file=sys.stderr, flush=True)


def guarded(method):
    """A callback whose exception fails the run instead of being printed and
    forgotten by GLib."""

    def wrapper(self, *args):
        try:
            return method(self, *args)
        except Exception as e:  # noqa: BLE001
            self.fail(f"{method.__name__}: {type(e).__name__}: {e}")
            return False

    wrapper.__name__ = method.__name__
    return wrapper


def is_loopback_host(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def candidate_address(line):
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
    parts = line.split()
    return parts[4] if len(parts) > 5 else ""


def http(method, url, body=None, content_type=None):
    """(status, headers, body) without following redirects or any proxy."""
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    if ARGS.token:
        req.add_header("Authorization", f"Bearer {ARGS.token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


def ice_agent(webrtc):
    """webrtcbin's GstWebRTCICE. GStreamer 1.22's "ice-agent" getter hands
    out webrtcbin's own reference without taking one (the wrapper's unref
    would free the agent under webrtcbin and crash it): add the missing one."""
    ice = webrtc.get_property("ice-agent")
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype = ctypes.c_void_p
    pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    gobject = ctypes.CDLL("libgobject-2.0.so.0")
    gobject.g_object_ref.argtypes = [ctypes.c_void_p]
    gobject.g_object_ref.restype = ctypes.c_void_p
    if ice.__grefcount__ < 2:
        gobject.g_object_ref(pointer(ice.__gpointer__, None))
    return ice


class Client:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.result = {"role": args.mode, "url": args.url, "connected": False}
        self.error = None
        self.session_url = None
        self.started = time.monotonic()
        self.connected_at = None
        self.states = {}
        self.counts = {}
        self.pipeline = None
        self.webrtc = None

    # ---------------------------------------------------------------- helpers
    def count(self, name):
        def probe(_pad, info):
            # Only what flows once ICE+DTLS are up counts as sent/received.
            if self.connected_at is not None:
                n = 1
                if info.type & Gst.PadProbeType.BUFFER_LIST:
                    n = info.get_buffer_list().length()
                self.counts[name] = self.counts.get(name, 0) + n
            return Gst.PadProbeReturn.OK

        return probe

    def fail(self, message):
        """Records the first failure and stops the loop (any thread)."""
        if self.error is None:
            self.error = message
            log(f"FAILED: {message}")
        GLib.idle_add(self.loop.quit)

    def on_bus(self, _bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            self.fail(f"GStreamer error from {msg.src.get_name()}: {err.message} ({debug})")
        elif msg.type == Gst.MessageType.WARNING:
            err, debug = msg.parse_warning()
            log(f"warning from {msg.src.get_name()}: {err.message} ({debug})")
        return True

    # ------------------------------------------------------------- pipelines
    def build_publisher(self):
        a = self.args
        desc = (
            "webrtcbin name=webrtc bundle-policy=max-bundle "
            "videotestsrc is-live=true pattern=ball "
            f"! video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1 "
            "! videoconvert ! queue max-size-buffers=2 leaky=downstream "
            f"! vp8enc name=venc deadline=1 cpu-used=8 threads=1 target-bitrate={a.video_bitrate} "
            f"keyframe-max-dist={a.fps} error-resilient=partitions lag-in-frames=0 "
            "! rtpvp8pay name=vpay pt=96 picture-id-mode=15-bit mtu=1200 "
            f"! {VIDEO_CAPS} ! webrtc. "
            "audiotestsrc is-live=true wave=sine freq=440 "
            "! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 "
            "! opusenc name=aenc ! rtpopuspay name=apay pt=111 mtu=1200 "
            f"! {AUDIO_CAPS} ! webrtc. "
        )
        self.pipeline = Gst.parse_launch(desc)
        self.webrtc = self.pipeline.get_by_name("webrtc")
        for element, name in (("venc", "video_frames"), ("vpay", "video_packets"), ("apay", "audio_packets")):
            pad = self.pipeline.get_by_name(element).get_static_pad("src")
            pad.add_probe(BUFFERS, self.count(name))

    def build_viewer(self):
        self.pipeline = Gst.Pipeline.new("viewer")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        recv = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        for caps in (VIDEO_CAPS, AUDIO_CAPS):
            self.webrtc.emit("add-transceiver", recv, Gst.Caps.from_string(caps))
        self.webrtc.connect("pad-added", self.on_pad_added)

    @guarded
    def on_pad_added(self, _webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_string("media") if caps and caps.get_size() else None
        kind = "video" if media == "video" else "audio" if media == "audio" else None
        if kind is None:
            log(f"ignoring pad {pad.get_name()} with caps {caps}")
            return
        depay = "rtpvp8depay" if kind == "video" else "rtpopusdepay"
        decoder = "vp8dec" if kind == "video" else "opusdec"
        if self.args.no_decode:
            desc = f"queue ! {depay} name={kind}depay ! fakesink name={kind}sink sync=false async=false"
        else:
            desc = (
                f"queue ! {depay} name={kind}depay ! {decoder} name={kind}dec "
                f"! fakesink name={kind}sink sync=false async=false"
            )
        bin_ = Gst.parse_bin_from_description(desc, True)
        self.pipeline.add(bin_)
        depay_el = bin_.get_by_name(f"{kind}depay")
        if kind == "video":
            for prop in ("request-keyframe", "wait-for-keyframe"):
                if depay_el.find_property(prop):
                    depay_el.set_property(prop, True)
        depay_el.get_static_pad("src").add_probe(BUFFERS, self.count(f"{kind}_depayloaded"))
        if not self.args.no_decode:
            bin_.get_by_name(f"{kind}dec").get_static_pad("src").add_probe(
                BUFFERS, self.count(f"{kind}_decoded")
            )
        bin_.sync_state_with_parent()
        if pad.link(bin_.get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            self.fail(f"could not link webrtcbin's {kind} pad")
        else:
            codec = caps.get_structure(0).get_string("encoding-name")
            self.result[f"{kind}_codec"] = codec
            log(f"receiving {kind} ({codec})")

    # ------------------------------------------------------------- signaling
    @guarded
    def start(self):
        # No UPnP (SSDP multicast), no TCP candidates, no STUN server: the
        # agent only ever talks to the server's loopback candidates.
        ice = ice_agent(self.webrtc)
        ice.set_property("ice-tcp", False)
        ice.get_property("agent").set_property("upnp", False)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_bus)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        for prop in ("ice-connection-state", "connection-state"):
            self.webrtc.connect(f"notify::{prop}", self.on_state)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.fail("the pipeline would not start (a missing plugin?)")
            return
        if self.args.mode == "publish":
            # Linking the sink pads made sendrecv transceivers: WHIP sends only.
            send = GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY
            for i in range(2):
                t = self.webrtc.emit("get-transceiver", i)
                if t is not None:
                    t.set_property("direction", send)
            # webrtcbin writes a track's a=ssrc only from the caps its sink
            # pad has when the offer is made; without it (and without a mid
            # header extension) the server cannot tell which m-line an SSRC
            # belongs to. So the offer waits for both encoders' caps.
            self.caps_deadline = time.monotonic() + 10
            GLib.timeout_add(20, self.offer_when_caps)
        else:
            self.create_offer()

    @guarded
    def offer_when_caps(self):
        pads = [p for p in self.webrtc.sinkpads]
        with_ssrc = [p for p in pads if (c := p.get_current_caps()) and c.get_structure(0).has_field("ssrc")]
        if len(pads) == 2 and len(with_ssrc) == 2:
            self.create_offer()
            return False
        if time.monotonic() > self.caps_deadline:
            self.fail(f"the encoders gave no RTP caps within 10 s ({len(with_ssrc)} of {len(pads)} pads)")
            return False
        return True

    def create_offer(self):
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    @guarded
    def on_offer_created(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            self.fail(f"webrtcbin made no offer: {reply}")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        self.gathering_deadline = GLib.timeout_add_seconds(10, self.on_gathering_timeout)

    def on_gathering_timeout(self):
        self.fail("ICE gathering did not complete within 10 s")
        return False

    @guarded
    def on_gathering(self, webrtc, _pspec):
        state = webrtc.get_property("ice-gathering-state")
        log(f"ice-gathering-state: {state.value_nick}")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and self.session_url is None:
            GLib.idle_add(self.post_offer)

    @guarded
    def post_offer(self):
        if self.session_url is not None or self.error is not None:
            return False
        GLib.source_remove(self.gathering_deadline)
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        lines = sdp.replace("\r\n", "\n").split("\n")
        ours = [candidate_address(l) for l in lines if l.startswith("a=candidate:")]
        # Only loopback-range candidates go to the server (a machine outside a
        # test namespace has others).
        kept = [
            l
            for l in lines
            if not l.startswith("a=candidate:") or is_loopback_host(candidate_address(l))
        ]
        loopback = [c for c in ours if is_loopback_host(c)]
        self.result["local_candidates"] = sorted(set(loopback))
        if not loopback:
            self.fail(
                "libnice gathered no loopback-range candidate (it skips the lo interface): "
                f"give it a non-lo interface with a 127.x address, e.g. a veth (gathered: {ours})"
            )
            return False
        offer = "\r\n".join(kept).rstrip("\r\n") + "\r\n"
        if self.args.show_sdp:
            log("offer:\n" + offer)
        status, headers, body = http("POST", self.args.url, offer, "application/sdp")
        if self.args.show_sdp:
            log(f"{status}:\n" + body)
        self.result["post_status"] = status
        if status != 201:
            self.fail(f"POST {self.args.url} answered {status}: {body.strip()[:500]}")
            return False
        location = headers.get("Location")
        if not location:
            self.fail("the 201 has no Location")
            return False
        self.session_url = urllib.parse.urljoin(self.args.url, location)
        log(f"201, session {self.session_url}")
        remote = [candidate_address(l) for l in body.splitlines() if l.startswith("a=candidate:")]
        self.result["remote_candidates"] = sorted(set(remote))
        if not remote or not all(is_loopback_host(c) for c in remote):
            self.fail(f"the answer's candidates are not all loopback addresses: {remote}")
            return False
        ok, msg = GstSdp.SDPMessage.new_from_text(body)
        if ok != GstSdp.SDPResult.OK:
            self.fail(f"the answer does not parse as SDP: {body[:300]!r}")
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        promise = Gst.Promise.new_with_change_func(self.on_answer_set, None)
        self.webrtc.emit("set-remote-description", answer, promise)
        GLib.timeout_add_seconds(self.args.connect_timeout, self.on_connect_timeout)
        return False

    @guarded
    def on_answer_set(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            self.fail(f"webrtcbin refused the answer: {reply.get_value('error')}")
            return
        self.watch_transports()

    # ----------------------------------------------------------- connection
    def dtls_transport(self):
        t = self.webrtc.emit("get-transceiver", 0)
        for end in ("sender", "receiver"):
            half = t.get_property(end) if t else None
            transport = half.get_property("transport") if half else None
            if transport is not None:
                return transport
        return None

    def watch_transports(self):
        """Logs the (bundled) DTLS transport's state as it changes: a failed
        handshake shows there (and in connection-state), not on the bus."""
        dtls = self.dtls_transport()
        if dtls is None:
            log("no DTLS transport to watch")
            return
        dtls.connect("notify::state", self.on_transport_state, "dtls")
        self.on_transport_state(dtls, None, "dtls")

    @guarded
    def on_transport_state(self, obj, _pspec, name):
        state = obj.get_property("state").value_nick
        if self.states.get(name) != state:
            self.states[name] = state
            self.result[f"{name}_state"] = state
            log(f"{name} transport: {state}")
            if state == "failed":
                ice = self.result.get("ice_connection_state", "?")
                self.fail(f"{name.upper()} failed, with ICE {ice} (the server's log has its side)")

    @guarded
    def on_state(self, webrtc, pspec):
        state = webrtc.get_property(pspec.name).value_nick
        log(f"{pspec.name}: {state}")
        self.result[pspec.name.replace("-", "_")] = state
        ice = self.result.get("ice_connection_state")
        if state == "failed" and pspec.name == "connection-state" and ice in ("connected", "completed"):
            dtls = self.dtls_transport()
            dtls = dtls.get_property("state").value_nick if dtls else "?"
            self.fail(
                f"DTLS failed: ICE {ice}, then the connection failed (DTLS transport: {dtls}); "
                "the server's log has its side"
            )
        elif state == "failed":
            self.fail(f"{pspec.name} became failed")
        elif pspec.name == "connection-state" and state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            self.result["connected"] = True
            self.result["setup_ms"] = int((self.connected_at - self.started) * 1000)
            GLib.idle_add(self.on_connected)

    @guarded
    def on_connected(self):
        log(f"connected; running {self.args.seconds} s")
        GLib.timeout_add(int(self.args.seconds * 1000), self.finish)
        return False

    def on_connect_timeout(self):
        if self.connected_at is None:
            self.fail(
                f"not connected within {self.args.connect_timeout} s "
                f"(ice: {self.states.get('ice')}, dtls: {self.states.get('dtls')})"
            )
        return False

    def on_signal(self, signum):
        log(f"signal {signum}: stopping")
        self.result["stopped_by_signal"] = True
        if self.connected_at is None:
            self.fail("stopped before it connected")
        self.loop.quit()
        return False

    def finish(self):
        self.loop.quit()
        return False

    # ---------------------------------------------------------------- result
    def collect_stats(self):
        """webrtcbin's inbound/outbound RTP statistics, best effort."""
        promise = Gst.Promise.new()
        self.webrtc.emit("get-stats", None, promise)
        if promise.wait() != Gst.PromiseResult.REPLIED or promise.get_reply() is None:
            return
        rtp = []

        def each(_field, value):
            name = value.get_name() if isinstance(value, Gst.Structure) else ""
            if name.endswith(("inbound-rtp", "outbound-rtp")):
                entry = {"type": name}
                for key in ("ssrc", "packets-sent", "packets-received", "packets-lost", "bytes-sent", "bytes-received"):
                    if value.has_field(key):
                        v = value.get_value(key)
                        entry[key] = v if isinstance(v, (int, float, str)) else str(v)
                rtp.append(entry)
            return True

        try:
            promise.get_reply().foreach(each)
        except Exception as e:  # statistics are a courtesy, never a failure
            log(f"stats unavailable: {e}")
        if rtp:
            self.result["rtp_stats"] = rtp

    def delete_session(self):
        if self.session_url is None:
            return
        try:
            status, _, body = http("DELETE", self.session_url)
        except Exception as e:
            status, body = None, str(e)
        self.result["delete_status"] = status
        log(f"DELETE {self.session_url}: {status}")
        if status != 200 and self.error is None and self.args.require_delete:
            self.error = f"DELETE {self.session_url} answered {status}: {body.strip()[:300]}"

    def run(self):
        if self.args.mode == "publish":
            self.build_publisher()
        else:
            self.build_viewer()
        GLib.idle_add(self.start)
        # SIGTERM or SIGINT end the run early, cleanly: DELETE, then the JSON line.
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, self.on_signal, signum)
        self.loop.run()
        if self.connected_at is not None:
            self.result["seconds"] = round(time.monotonic() - self.connected_at, 3)
            self.collect_stats()
        self.result.update(self.counts)
        self.delete_session()
        self.pipeline.set_state(Gst.State.NULL)
        if self.error is None and self.args.mode == "watch":
            self.check_thresholds()
        if self.error is None and self.args.mode == "publish":
            for name in ("video_packets", "audio_packets"):
                if self.counts.get(name, 0) == 0:
                    self.error = f"sent no {name.replace('_', ' ')}"
        if self.error is not None:
            self.result["error"] = self.error
        print(json.dumps(self.result, sort_keys=True), flush=True)
        return 0 if self.error is None else 1

    def check_thresholds(self):
        stage = "depayloaded" if self.args.no_decode else "decoded"
        video = self.counts.get(f"video_{stage}", 0)
        audio = self.counts.get(f"audio_{stage}", 0)
        if video < self.args.min_video_frames:
            self.error = f"only {video} video frames {stage} (wanted >= {self.args.min_video_frames})"
        elif audio < self.args.min_audio_buffers:
            self.error = f"only {audio} audio buffers {stage} (wanted >= {self.args.min_audio_buffers})"


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["publish", "watch", "check"], help="check: only verify the plugins are there")
    p.add_argument("url", nargs="?", default="", help="the WHIP (publish) or WHEP (watch) endpoint URL, on loopback")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to send/receive once connected")
    p.add_argument("--connect-timeout", type=int, default=15, help="seconds from the POST to connected")
    p.add_argument("--timeout", type=int, default=60, help="hard limit for the whole run, seconds")
    p.add_argument("--token", help="a bearer token")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--video-bitrate", type=int, default=300000, help="vp8enc target-bitrate, bit/s")
    p.add_argument("--no-decode", action="store_true", help="watch: depayload only (no vp8dec/opusdec)")
    p.add_argument("--min-video-frames", type=int, default=1)
    p.add_argument("--min-audio-buffers", type=int, default=1)
    p.add_argument("--show-sdp", action="store_true", help="log the offer and the answer")
    p.add_argument("--require-delete", action="store_true", help="fail unless DELETE answers 200")
    ARGS = p.parse_args()

    host = urllib.parse.urlsplit(ARGS.url).hostname or ""
    if ARGS.mode != "check" and not is_loopback_host(host):
        print(f"refusing {ARGS.url}: only loopback addresses are allowed", file=sys.stderr)
        return 2

    def hard_limit(_sig, _frame):
        msg = f"hard time limit of {ARGS.timeout} s reached"
        print(f"[gst {ARGS.mode}] FAILED: {msg}", file=sys.stderr, flush=True)
        print(json.dumps({"role": ARGS.mode, "error": msg}), flush=True)
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_limit)
    signal.alarm(ARGS.timeout)
    Gst.init(None)
    missing = [
        f
        for f in ("webrtcbin", "nicesrc", "dtlssrtpenc", "vp8enc", "vp8dec", "rtpvp8pay",
                  "rtpvp8depay", "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay",
                  "videotestsrc", "audiotestsrc")
        if Gst.ElementFactory.find(f) is None
    ]
    if missing:
        print(
            f"missing GStreamer elements {missing}: apt-get install gstreamer1.0-plugins-bad "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-base gstreamer1.0-nice",
            file=sys.stderr,
        )
        return 2
    if ARGS.mode == "check":
        print(json.dumps({"role": "check", "gstreamer": Gst.version_string()}))
        return 0
    return Client(ARGS).run()


ARGS = None

if __name__ == "__main__":
    sys.exit(main())
