package io.umbra.android

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit

private const val SECRET = "correct horse battery staple"

/** Speakers a session was told of, as "streamId/connectionId". */
private fun Client.recordSpeakers(): MutableList<String> {
    val seen = CopyOnWriteArrayList<String>()
    session.setActiveSpeakerListener { _, streamId, connectionId -> seen += "$streamId/$connectionId" }
    return seen
}

/**
 * Simulcast layer choice, subscribe-to-video and active speakers through the real router of a
 * real `umbra serve`, end to end encrypted (the same checks as crates/umbra-client/tests/simulcast.rs).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SimulcastTest {
    @Test
    fun preferredResolution_picksTheLayer_andSubscribeToVideoPausesIt() {
        val sid = Server.createE2eeSession()
        Client("pub", sid, SECRET).use { pub ->
            Client("sub", sid, SECRET).use { sub ->
                pub.connect(sid)
                sub.connect(sid)
                // 640x360 goes out as three layers: 160x90 "q", 320x180 "h", 640x360 "f".
                pub.publish(PatternCapturer(640, 360, 30)).awaitStream()
                waitFor(10.0, "the stream") { sub.streams.isNotEmpty() }
                val renderer = CheckingRenderer()
                val subscriber = Subscriber.Builder(sub.streams.single()).renderer(renderer).build()
                val layers = CopyOnWriteArrayList<SubscriberKit.VideoLayer>()
                subscriber.setVideoLayerListener { _, layer -> layers += layer }
                val recorded = RecordingSubscriber(subscriber, renderer)
                // Before subscribing: applied when the subscription starts.
                subscriber.setPreferredResolution(VideoUtils.Size(320, 180))
                assertEquals(VideoUtils.Size(320, 180), subscriber.getPreferredResolution())
                sub.session.subscribe(subscriber)

                waitFor(20.0, "layer h and a 320x180 picture") {
                    layers.any { it.rid == "h" && !it.paused } && renderer.frames.any { it.width == 320 && it.height == 180 }
                }

                subscriber.setPreferredResolution(VideoUtils.Size(160, 90))
                waitFor(10.0, "layer q and a 160x90 picture") {
                    layers.any { it.rid == "q" && !it.paused } && renderer.frames.any { it.width == 160 && it.height == 90 }
                }
                Thread.sleep(300) // pictures of the previous layer still in flight
                val from = renderer.frames.size
                Thread.sleep(2_000)
                val after = renderer.frames.drop(from)
                assertTrue(after.size >= 20, "${after.size} pictures in 2 s")
                assertTrue(after.all { it.width == 160 && it.height == 90 }, "sizes: ${after.map { "${it.width}x${it.height}" }.toSet()}")

                subscriber.setSubscribeToVideo(false)
                assertEquals(false, subscriber.getSubscribeToVideo())
                waitFor(10.0, "a paused layer") { layers.lastOrNull()?.paused == true }
                Thread.sleep(500)
                val stopped = renderer.frames.size
                Thread.sleep(1_500)
                assertTrue(renderer.frames.size <= stopped + 1, "${renderer.frames.size - stopped} pictures while paused")

                subscriber.setSubscribeToVideo(true)
                waitFor(10.0, "pictures again") { renderer.frames.size >= stopped + 10 }

                assertEquals(emptyList<OpentokError>(), recorded.errors.toList())
                assertEquals(0, recorded.mismatches)
                sub.session.unsubscribe(subscriber)
            }
        }
    }

    @Test
    fun badPreferences_areRefusedWithClearErrors() {
        val sid = Server.createE2eeSession()
        Client("pub", sid, SECRET).use { pub ->
            pub.connect(sid)
            val stream = pub.publish(null).awaitStream()
            val s = Subscriber.Builder(stream).build()
            val e1 = assertThrows<IllegalArgumentException> { s.setPreferredResolution(VideoUtils.Size(0, 90)) }
            assertTrue(e1.message!!.contains("0x90"), e1.message)
            assertThrows<IllegalArgumentException> { s.setPreferredResolution(VideoUtils.Size(-1, 90)) }
            val e2 = assertThrows<IllegalArgumentException> { s.setPreferredFrameRate(0f) }
            assertTrue(e2.message!!.contains("frame rate"), e2.message)
            assertThrows<IllegalArgumentException> { s.setPreferredFrameRate(241f) }
            assertThrows<IllegalArgumentException> { s.setPreferredFrameRate(Float.NaN) }
            // A refused value changes nothing.
            assertNull(s.getPreferredResolution())
            assertEquals(SubscriberKit.NO_PREFERRED_FRAMERATE, s.getPreferredFrameRate())
            // Fractions round up, as the C SDK's.
            s.setPreferredFrameRate(7.5f)
            assertEquals(8f, s.getPreferredFrameRate())
            s.setPreferredFrameRate(SubscriberKit.NO_PREFERRED_FRAMERATE)
            assertEquals(SubscriberKit.NO_PREFERRED_FRAMERATE, s.getPreferredFrameRate())
            s.destroy()
        }
    }

    @Test
    fun activeSpeaker_namesThePublishingConnection_butNeverOneWithoutAudioLevels() {
        val sid = Server.createE2eeSession()
        Client("watcher", sid, SECRET).use { watcher ->
            Client("private", sid, SECRET).use { quiet ->
                Client("speaker", sid, SECRET).use { speaker ->
                    val heard = watcher.recordSpeakers()
                    watcher.connect(sid)
                    quiet.connect(sid)
                    speaker.connect(sid)
                    // The same 440 Hz tone, once without levels: the router cannot rank it.
                    val hidden = RecordingPublisher(Publisher.Builder().name("private").videoTrack(false).audioLevel(false).build())
                    quiet.session.publish(hidden.publisher)
                    val hiddenStream = hidden.awaitStream()
                    Thread.sleep(4_000)
                    assertEquals(emptyList<String>(), heard.toList(), "a publisher without audio levels was ranked")

                    val loud = RecordingPublisher(Publisher.Builder().name("speaker").videoTrack(false).build())
                    speaker.session.publish(loud.publisher)
                    val stream = loud.awaitStream()
                    val expected = "${stream.streamId}/${speaker.session.connection!!.connectionId}"
                    waitFor(15.0, "the speaker to be named") { heard.contains(expected) }
                    assertTrue(heard.none { it.startsWith(hiddenStream.streamId) }, "$heard")
                    assertEquals(emptyList<OpentokError>(), hidden.errors + loud.errors + watcher.sessionErrors)
                }
            }
        }
    }
}
