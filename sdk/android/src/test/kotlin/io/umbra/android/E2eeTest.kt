package io.umbra.android

import io.umbra.ffi.SessionOptions
import io.umbra.ffi.UmbraException
import io.umbra.ffi.testPatternFrame
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import java.io.File
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import kotlin.math.abs
import io.umbra.ffi.Session as NativeSession
import io.umbra.ffi.SessionListener as NativeListener

private const val SECRET = "correct horse battery staple"
private const val OTHER_SECRET = "a quite different secret"

private fun OpentokError.ErrorCode.count(errors: List<OpentokError>) = errors.count { it.errorCode == this }

/** The Kotlin SDK against a real `umbra serve` and the real native library. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class E2eeTest {
    @Test
    fun sameSecret_kotlinPublishersAndSubscribersDecodeEachOther() {
        val sid = Server.createE2eeSession()
        Client("alice", sid, SECRET).use { alice ->
            Client("bob", sid, SECRET).use { bob ->
                // An invalid secret is refused and changes nothing: bob still decrypts with SECRET.
                bob.session.setEncryptionSecret("short")
                assertEquals(1, OpentokError.ErrorCode.InvalidEncryptionSecret.count(bob.sessionErrors))
                bob.sessionErrors.clear()

                alice.connect(sid)
                bob.connect(sid)
                val aliceCam = PatternCapturer(320, 240, 30)
                val bobCam = PatternCapturer(352, 288, 30)
                val alicePub = alice.publish(aliceCam, toneHz = 440.0)
                // Bob's audio is the app's own (written through writeAudio), alice's the built-in tone.
                val bobPub = bob.publish(bobCam, toneHz = 660.0, externalAudio = true)
                val aliceStream = alicePub.awaitStream()
                val bobStream = bobPub.awaitStream()
                assertTrue(aliceStream.isEncrypted(), "the stream declares E2EE")

                // Others' streams only: nobody is offered their own.
                waitFor(10.0, "each to see the other's stream") { alice.streams.size == 1 && bob.streams.size == 1 }
                assertEquals(bobStream, alice.streams.single())
                assertEquals(aliceStream, bob.streams.single())

                val aliceHears = AudioCollector()
                val bobHears = AudioCollector()
                val aliceSub = alice.subscribe(alice.streams.single(), aliceHears)
                val bobSub = bob.subscribe(bob.streams.single(), bobHears)
                waitFor(30.0, "40 decoded frames each way") {
                    aliceSub.renderer.frames.size >= 40 && bobSub.renderer.frames.size >= 40 &&
                        aliceHears.blocks >= 75 && bobHears.blocks >= 75
                }
                assertPatternFrames(bobSub.renderer.frames.toList(), 320, 240, 40)
                assertPatternFrames(aliceSub.renderer.frames.toList(), 352, 288, 40)
                assertTrue(abs(bobHears.frequency() - 440.0) < 25.0, "bob hears ${bobHears.frequency()} Hz, not 440")
                assertTrue(abs(aliceHears.frequency() - 660.0) < 25.0, "alice hears ${aliceHears.frequency()} Hz, not 660")

                for (s in listOf(aliceSub, bobSub)) {
                    assertTrue(s.connected)
                    assertEquals(emptyList<OpentokError>(), s.errors.toList())
                    assertEquals(0, s.mismatches)
                }
                assertEquals(emptyList<OpentokError>(), alice.sessionErrors + bob.sessionErrors + alicePub.errors + bobPub.errors)
                assertEquals(emptyList<Throwable>(), aliceCam.errors + bobCam.errors)

                // A picture of the wrong size is refused with a clear error, not sent.
                val e = assertThrows<IllegalArgumentException> { aliceCam.provideWrongSize() }
                assertTrue(e.message!!.contains("64x16") && e.message!!.contains("320x240"), e.message)

                // Signals go through the same session.
                alice.session.sendSignal("chat", "hello bob")
                waitFor(10.0, "bob to receive the signal") { bob.signals.contains("chat:hello bob") }

                alice.session.unpublish(alicePub.publisher)
                waitFor(10.0, "bob to see alice's stream go") { bob.streams.isEmpty() }
                waitFor(5.0, "alice's capturer to stop") { !aliceCam.isCaptureStarted() }
            }
        }
    }

    @Test
    fun preferredVideoCodec_vp9AndH264PublishersAreDecoded() {
        for (codec in listOf(PublisherKit.VideoCodec.VP9, PublisherKit.VideoCodec.H264)) {
            val sid = Server.createE2eeSession()
            Client("pub", sid, SECRET).use { pub ->
                Client("sub", sid, SECRET).use { sub ->
                    pub.connect(sid)
                    sub.connect(sid)
                    pub.publish(PatternCapturer(320, 240, 30), codec = codec).awaitStream()
                    waitFor(10.0, "the $codec stream") { sub.streams.isNotEmpty() }
                    val s = sub.subscribe(sub.streams.single())
                    waitFor(30.0, "30 decoded $codec frames") { s.renderer.frames.size >= 30 }
                    assertPatternFrames(s.renderer.frames.toList(), 320, 240, 30)
                    assertEquals(emptyList<OpentokError>(), s.errors.toList(), "$codec")
                }
            }
        }
    }

    @Test
    fun wrongSecret_exactlyOneMismatchAndNoFrame_thenTheRightSecretRecovers() {
        val sid = Server.createE2eeSession()
        Client("pub", sid, SECRET).use { pub ->
            Client("sub", sid, OTHER_SECRET).use { sub ->
                pub.connect(sid)
                sub.connect(sid)
                val publisher = pub.publish(PatternCapturer(320, 240, 30))
                publisher.awaitStream()
                waitFor(10.0, "the stream") { sub.streams.isNotEmpty() }
                val hears = AudioCollector()
                val s = sub.subscribe(sub.streams.single(), hears)
                waitFor(20.0, "the mismatch") { s.mismatches > 0 }
                // Frames keep arriving for a while and still only one report, nothing decoded.
                waitFor(15.0, "60 more frames to arrive") { s.subscriber.getStats().videoFramesReceived >= 90uL }
                val stats = s.subscriber.getStats()
                assertEquals(1, OpentokError.ErrorCode.EncryptionSecretMismatch.count(s.errors), "errors: ${s.errors}")
                assertEquals(1, s.mismatches)
                assertEquals(0, s.renderer.frames.size, "no picture with the wrong secret")
                assertEquals(0, hears.blocks, "no audio with the wrong secret")
                assertEquals(0uL, stats.videoFramesDecoded)
                assertTrue(stats.decryptFailures > 0uL, "$stats")
                val mismatch = s.errors.first { it.errorCode == OpentokError.ErrorCode.EncryptionSecretMismatch }
                assertEquals(OpentokError.Domain.SubscriberErrorDomain, mismatch.errorDomain)
                assertEquals(1590, mismatch.errorCode.errorCode)

                sub.session.setEncryptionSecret(SECRET)
                waitFor(15.0, "frames after the secret changed") { s.matches == 1 && s.renderer.frames.size >= 30 }
                assertPatternFrames(s.renderer.frames.toList(), 320, 240, 30)
                assertEquals(1, s.matches)
                assertEquals(1, s.mismatches)
                assertEquals(listOf(OpentokError.ErrorCode.EncryptionSecretMismatch), s.errors.map { it.errorCode })
            }
        }
    }

    @Test
    fun missingSecret_sessionPublisherAndSubscriberReportIt() {
        val sid = Server.createE2eeSession()
        Client("has-secret", sid, SECRET).use { other ->
            Client("no-secret", sid, null).use { c ->
                other.connect(sid)
                other.publish(null).awaitStream()
                c.connect(sid)
                waitFor(10.0, "the missing-secret report") { c.sessionErrors.isNotEmpty() }
                assertEquals(listOf(OpentokError.ErrorCode.EncryptionSecretMissing), c.sessionErrors.map { it.errorCode })
                assertEquals(1571, c.sessionErrors[0].errorCode.errorCode)
                assertEquals(OpentokError.Domain.SessionErrorDomain, c.sessionErrors[0].errorDomain)

                val p = c.publish(null)
                waitFor(10.0, "the publisher's error") { p.errors.isNotEmpty() }
                assertEquals(listOf(OpentokError.ErrorCode.EncryptionSecretMissing), p.errors.map { it.errorCode })
                assertEquals(OpentokError.Domain.PublisherErrorDomain, p.errors[0].errorDomain)

                waitFor(10.0, "the stream") { c.streams.isNotEmpty() }
                val s = c.subscribe(c.streams.single())
                waitFor(10.0, "the subscriber's error") { s.errors.isNotEmpty() }
                assertEquals(listOf(OpentokError.ErrorCode.EncryptionSecretMissing), s.errors.map { it.errorCode })
                assertEquals(OpentokError.Domain.SubscriberErrorDomain, s.errors[0].errorDomain)

                // Still connected; with a secret the same objects work.
                assertTrue(c.connected && !c.disconnected)
                c.session.setEncryptionSecret(SECRET)
                p.errors.clear()
                s.errors.clear()
                c.session.publish(p.publisher)
                p.awaitStream()
                c.session.subscribe(s.subscriber)
                waitFor(20.0, "frames once the secret is set") { s.renderer.frames.size >= 20 }
                assertPatternFrames(s.renderer.frames.toList(), 320, 240, 20)
                assertEquals(1, c.sessionErrors.size)
                assertEquals(emptyList<OpentokError>(), p.errors + s.errors)
            }
        }
    }

    @Test
    fun plainMediaFromAPublisherDeclaringE2ee_isStreamNotEncrypted_neverAMismatch() {
        // A Rust test-only publisher that declares E2EE and sends plain VP8/Opus (a broken client).
        val sid = Server.createE2eeSession()
        val liar = ProcessBuilder(
            Server.plaintextPublisherBin, "--url", Server.url, "--api-key", Server.apiKey, "--session-id", sid,
            "--token", Server.token(sid), "--secret", SECRET, "--seconds", "30",
        ).redirectErrorStream(true).redirectOutput(File.createTempFile("plaintext-publisher", ".log")).start()
        try {
            Client("victim", sid, SECRET).use { c ->
                c.connect(sid)
                waitFor(20.0, "the plain stream") { c.streams.isNotEmpty() }
                val hears = AudioCollector()
                val s = c.subscribe(c.streams.single(), hears)
                waitFor(15.0, "the report") { s.errors.isNotEmpty() }
                waitFor(15.0, "90 plain frames to arrive") { s.subscriber.getStats().videoFramesReceived >= 90uL }
                assertEquals(listOf(OpentokError.ErrorCode.StreamNotEncrypted), s.errors.map { it.errorCode })
                assertEquals(1592, s.errors[0].errorCode.errorCode)
                assertEquals(0, s.mismatches, "plain media is not a secret mismatch")
                assertEquals(0, s.renderer.frames.size, "plain frames are never rendered")
                assertEquals(0, hears.blocks, "plain audio is never played")
            }
        } finally {
            liar.destroy()
            if (!liar.waitFor(10, TimeUnit.SECONDS)) liar.destroyForcibly()
        }
    }

    @Test
    fun invalidSecret_isRefusedWithItsCode() {
        val errors = CopyOnWriteArrayList<OpentokError>()
        Session.Builder(Server.apiKey, "1_not_connected").serverUrl(Server.url).build().use { session ->
            session.setSessionListener(object : Session.SessionListener {
                override fun onConnected(session: Session) {}
                override fun onDisconnected(session: Session) {}
                override fun onStreamReceived(session: Session, stream: Stream) {}
                override fun onStreamDropped(session: Session, stream: Stream) {}
                override fun onError(session: Session, error: OpentokError) { errors += error }
            })
            val tooLong = "x".repeat(257)
            for (bad in listOf("", "seven77", tooLong, "\uD83D\uDD12".repeat(7))) {
                errors.clear()
                session.setEncryptionSecret(bad)
                assertEquals(listOf(OpentokError.ErrorCode.InvalidEncryptionSecret), errors.map { it.errorCode }, "secret of ${bad.length} UTF-16 units")
                assertEquals(1570, errors[0].errorCode.errorCode)
            }
            // The rule counts code points: 8 emoji (16 UTF-16 units) pass, 256 ASCII characters too.
            errors.clear()
            session.setEncryptionSecret("\uD83D\uDD12".repeat(8))
            session.setEncryptionSecret("y".repeat(256))
            assertEquals(emptyList<OpentokError>(), errors.toList())
        }
        // The binding itself throws the precise exception.
        val listener = object : NativeListener {
            override fun onConnected(connectionId: String) {}
            override fun onDisconnected() {}
            override fun onError(error: io.umbra.ffi.ErrorInfo) {}
            override fun onConnectionCreated(connection: io.umbra.ffi.Connection) {}
            override fun onConnectionDropped(connection: io.umbra.ffi.Connection) {}
            override fun onStreamReceived(stream: io.umbra.ffi.Stream) {}
            override fun onStreamDropped(stream: io.umbra.ffi.Stream) {}
            override fun onStreamHasAudioChanged(stream: io.umbra.ffi.Stream, hasAudio: Boolean) {}
            override fun onStreamHasVideoChanged(stream: io.umbra.ffi.Stream, hasVideo: Boolean) {}
            override fun onStreamVideoDimensionsChanged(stream: io.umbra.ffi.Stream, width: UInt, height: UInt) {}
            override fun onSignalReceived(signalType: String, data: String, from: io.umbra.ffi.Connection?) {}
            override fun onActiveSpeakerChanged(streamId: String?, connectionId: String?) {}
        }
        val native = NativeSession(SessionOptions(Server.apiKey, "1_x", Server.url, null), listener)
        try {
            val e = assertThrows<UmbraException.InvalidEncryptionSecret> { native.setEncryptionSecret("short") }
            assertTrue(e.message!!.contains("invalid encryption secret"), e.message)
        } finally {
            native.close()
        }
    }

    @Test
    fun badInput_getsClearErrors() {
        val e1 = assertThrows<IllegalArgumentException> { Session.Builder("", "1_x").serverUrl(Server.url).build() }
        assertTrue(e1.message!!.contains("must not be empty"), e1.message)
        val e2 = assertThrows<IllegalArgumentException> { Session.Builder(Server.apiKey, "1_x").serverUrl("ftp://host").build() }
        assertTrue(e2.message!!.contains("http://host:port"), e2.message)
        val e3 = assertThrows<IllegalArgumentException> { Session.Builder(Server.apiKey, "1_x").serverUrl(Server.url).bindIp("not-an-ip").build() }
        assertTrue(e3.message!!.contains("not an IP address"), e3.message)
        val e4 = assertThrows<IllegalArgumentException> { Publisher.Builder().testPattern(10, 10, 30).build() }
        assertTrue(e4.message!!.contains("10x10"), e4.message)
        val e5 = assertThrows<IllegalArgumentException> { Publisher.Builder().videoTrack(false).audioTrack(false).build() }
        assertTrue(e5.message!!.contains("audio, video or both"), e5.message)
        val tone = Publisher.Builder().build()
        val e6 = assertThrows<IllegalStateException> { tone.writeAudio(ShortArray(960)) }
        assertTrue(e6.message!!.contains("not External"), e6.message)
        tone.destroy()
        assertThrows<UmbraException.InvalidParameter> { testPatternFrame(63u, 16u, 0u) }

        // Calls that need a connection report it instead of crashing.
        val sid = Server.createE2eeSession()
        Client("unconnected", sid, SECRET).use { c ->
            val p = c.publish(null)
            waitFor(5.0, "the publisher's error") { p.errors.isNotEmpty() }
            assertEquals(OpentokError.ErrorCode.NotConnected, p.errors.single().errorCode)
            c.session.connect("   ")
            assertEquals(OpentokError.ErrorCode.InvalidParameter, c.sessionErrors.single().errorCode)
            c.sessionErrors.clear()
            // A forged token: the server refuses it.
            c.session.connect("T1==bm90IGEgdG9rZW4=")
            waitFor(20.0, "the refusal") { c.sessionErrors.isNotEmpty() }
            assertEquals(OpentokError.ErrorCode.AuthorizationFailure, c.sessionErrors.first().errorCode, "${c.sessionErrors}")
            assertFalse(c.connected)
        }
    }

    @Test
    fun throwingListener_doesNotStopTheSession() {
        val sid = Server.createE2eeSession()
        val seen = CopyOnWriteArrayList<String>()
        Session.Builder(Server.apiKey, sid).serverUrl(Server.url).build().use { session ->
            session.setEncryptionSecret(SECRET)
            session.setSessionListener(object : Session.SessionListener {
                override fun onConnected(session: Session) {
                    seen += "connected"
                    throw IllegalStateException("an app bug in onConnected (expected by the test)")
                }
                override fun onDisconnected(session: Session) { seen += "disconnected" }
                override fun onStreamReceived(session: Session, stream: Stream) {}
                override fun onStreamDropped(session: Session, stream: Stream) {}
                override fun onError(session: Session, error: OpentokError) { seen += "error ${error.errorCode}" }
            })
            session.setSignalListener(object : Session.SignalListener {
                override fun onSignalReceived(session: Session, type: String, data: String, connection: Connection?) { seen += "signal $data" }
            })
            session.connect(Server.token(sid))
            waitFor(20.0, "connected") { "connected" in seen }
            session.sendSignal("t", "after the throw")
            waitFor(10.0, "the signal after the throw") { "signal after the throw" in seen }
            session.disconnect()
            waitFor(10.0, "disconnected") { "disconnected" in seen }
        }
    }

    @Test
    fun interop_rustCliPublisherToKotlin_andKotlinPublisherToRustCli() {
        // The Rust CLI publishes; a Kotlin subscriber decodes its test pattern.
        val sid = Server.createE2eeSession()
        val cli = ProcessBuilder(
            Server.mediaBin, "publish", "--url", Server.url, "--api-key", Server.apiKey, "--api-secret", Server.apiSecretForCli,
            "--session-id", sid, "--secret", SECRET, "--duration", "30",
        ).redirectErrorStream(true).redirectOutput(File.createTempFile("umbra-media-publish", ".log")).start()
        try {
            Client("kotlin-sub", sid, SECRET).use { k ->
                k.connect(sid)
                waitFor(20.0, "the CLI's stream") { k.streams.isNotEmpty() }
                val stream = k.streams.single()
                val s = k.subscribe(stream)
                waitFor(20.0, "30 frames from the CLI") { s.renderer.frames.size >= 30 }
                val f = s.renderer.frames.first()
                assertPatternFrames(s.renderer.frames.toList(), f.width, f.height, 30)
                assertEquals(emptyList<OpentokError>(), s.errors.toList())
            }
        } finally {
            cli.destroy()
            if (!cli.waitFor(10, TimeUnit.SECONDS)) cli.destroyForcibly()
        }

        // A Kotlin publisher; the Rust CLI subscribes and writes what it decoded to a Y4M file.
        val sid2 = Server.createE2eeSession()
        val dir = Files.createTempDirectory("umbra-android-interop").toFile()
        try {
            Client("kotlin-pub", sid2, SECRET).use { k ->
                k.connect(sid2)
                val cam = PatternCapturer(320, 240, 30)
                k.publish(cam).awaitStream()
                val y4m = File(dir, "received.y4m")
                val (rc, out) = Server.run(
                    listOf(
                        Server.mediaBin, "subscribe", "--url", Server.url, "--api-key", Server.apiKey,
                        "--api-secret", Server.apiSecretForCli, "--session-id", sid2, "--secret", SECRET,
                        "--duration", "6", "--json", "--y4m-out", y4m.path,
                    ),
                    60,
                )
                assertEquals(0, rc, out)
                val last = out.lines().last { it.startsWith("{") }
                assertTrue(last.contains("\"encryption\":\"encrypted\""), last)
                val frames = readY4m(y4m).map { (w, h, data) -> checkPatternFrame(w, h, data) }
                assertPatternFrames(frames, 320, 240, 60)
            }
        } finally {
            dir.deleteRecursively()
        }
    }
}
