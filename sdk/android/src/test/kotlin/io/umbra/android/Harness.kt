package io.umbra.android

import io.umbra.ffi.VideoFrame as NativeFrame
import io.umbra.ffi.testPatternFrame
import io.umbra.ffi.testPatternReadFrameNumber
import io.umbra.ffi.videoFramePsnr
import java.io.File
import java.net.HttpURLConnection
import java.net.URL
import java.util.Base64
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec
import kotlin.math.abs

/** The `umbra serve` under test (started by scripts/test.d/70-android.sh) and the app-server side. */
object Server {
    val url = env("UMBRA_TEST_URL")
    val apiKey = env("UMBRA_TEST_API_KEY")
    private val apiSecret = env("UMBRA_TEST_API_SECRET")
    private val umbraBin = env("UMBRA_TEST_BIN")
    private val dataDir = env("UMBRA_TEST_DATA_DIR")
    val mediaBin = env("UMBRA_TEST_MEDIA_BIN")
    val plaintextPublisherBin = env("UMBRA_TEST_PLAINTEXT_PUBLISHER")
    val apiSecretForCli get() = apiSecret

    fun env(name: String): String =
        System.getenv(name)?.takeIf { it.isNotEmpty() } ?: error("$name is not set: run scripts/test.d/70-android.sh")

    private fun b64(b: ByteArray) = Base64.getUrlEncoder().withoutPadding().encodeToString(b)

    private fun projectJwt(): String {
        val now = System.currentTimeMillis() / 1000
        val head = b64("""{"alg":"HS256","typ":"JWT"}""".toByteArray())
        val body = b64("""{"iss":"$apiKey","ist":"project","iat":$now,"exp":${now + 180},"jti":"kotlin-${UUID.randomUUID()}"}""".toByteArray())
        val mac = Mac.getInstance("HmacSHA256").apply { init(SecretKeySpec(apiSecret.toByteArray(), "HmacSHA256")) }
        return "$head.$body.${b64(mac.doFinal("$head.$body".toByteArray()))}"
    }

    /** A routed, end-to-end encrypted session, made as an app server would. */
    fun createE2eeSession(): String {
        val c = URL("$url/session/create").openConnection() as HttpURLConnection
        c.requestMethod = "POST"
        c.connectTimeout = 10_000
        c.readTimeout = 10_000
        c.doOutput = true
        c.setRequestProperty("Content-Type", "application/x-www-form-urlencoded")
        c.setRequestProperty("Accept", "application/json")
        c.setRequestProperty("X-OPENTOK-AUTH", projectJwt())
        c.outputStream.use { it.write("p2p.preference=disabled&e2ee=true".toByteArray()) }
        val body = c.inputStream.use { it.readBytes().decodeToString() }
        return Regex("\"session_id\"\\s*:\\s*\"([^\"]+)\"").find(body)?.groupValues?.get(1) ?: error("no session_id in $body")
    }

    /** A client token from the `umbra token` CLI. */
    fun token(sessionId: String): String {
        val r = run(listOf(umbraBin, "--data-dir", dataDir, "token", "--project", apiKey, "--session-id", sessionId), 30)
        check(r.first == 0) { "umbra token failed: ${r.second}" }
        return r.second.trim()
    }

    fun run(cmd: List<String>, seconds: Long): Pair<Int, String> {
        val p = ProcessBuilder(cmd).redirectErrorStream(true).start()
        val out = StringBuilder()
        val reader = Thread { out.append(p.inputStream.bufferedReader().readText()) }.apply { start() }
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly()
            error("${cmd.first()} did not finish within $seconds s")
        }
        reader.join(5_000)
        return p.exitValue() to out.toString()
    }
}

/** JUnit's Kotlin `assertThrows` (Debian's junit5 is built without its Kotlin extensions). */
inline fun <reified T : Throwable> assertThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.java.name}, got $e", e)
    }
    throw AssertionError("expected ${T::class.java.name}, nothing was thrown")
}

/** Polls `cond` until it holds or `seconds` pass. */
fun waitFor(seconds: Double, what: String, cond: () -> Boolean) {
    val end = System.nanoTime() + (seconds * 1e9).toLong()
    while (!cond()) {
        if (System.nanoTime() > end) throw AssertionError("timed out after $seconds s waiting for $what")
        Thread.sleep(25)
    }
}

fun meanLuma(width: Int, height: Int, i420: ByteArray): Double {
    var sum = 0L
    for (i in 0 until width * height) sum += i420[i].toInt() and 0xff
    return sum.toDouble() / (width * height)
}

/** What a decoded picture of the test pattern says about itself, checked against the original. */
data class CheckedFrame(val width: Int, val height: Int, val number: Int?, val psnr: Double?, val lumaError: Double?)

fun checkPatternFrame(width: Int, height: Int, i420: ByteArray): CheckedFrame {
    val frame = NativeFrame(width.toUInt(), height.toUInt(), i420)
    val n = testPatternReadFrameNumber(frame) ?: return CheckedFrame(width, height, null, null, null)
    val reference = testPatternFrame(width.toUInt(), height.toUInt(), n)
    return CheckedFrame(
        width, height, n.toInt(),
        videoFramePsnr(reference, frame),
        abs(meanLuma(width, height, i420) - meanLuma(width, height, reference.data)),
    )
}

/** Asserts that enough decoded pictures are the test pattern's: same size, PSNR, mean luma. */
fun assertPatternFrames(frames: List<CheckedFrame>, width: Int, height: Int, atLeast: Int) {
    check(frames.size >= atLeast) { "only ${frames.size} frames decoded, wanted $atLeast" }
    for (f in frames) check(f.width == width && f.height == height) { "a ${f.width}x${f.height} frame, expected ${width}x$height" }
    val good = frames.filter { (it.psnr ?: 0.0) >= 30.0 && (it.lumaError ?: 255.0) < 3.0 }
    check(good.size >= frames.size * 9 / 10) {
        "${frames.size - good.size} of ${frames.size} frames differ from the pattern: " + frames.take(10).joinToString()
    }
    val numbers = good.mapNotNull { it.number }
    check(numbers.zipWithNext().count { (a, b) -> b > a } >= numbers.size * 8 / 10) { "frame numbers do not advance: $numbers" }
}

/** Draws the test pattern on its own thread and hands it over through the capturer interface. */
class PatternCapturer(private val width: Int, private val height: Int, private val fps: Int) : BaseVideoCapturer() {
    @Volatile private var thread: Thread? = null
    @Volatile var provided = 0
    val errors = CopyOnWriteArrayList<Throwable>()

    override fun init() {}
    override fun destroy() {}
    override fun isCaptureStarted() = thread != null
    override fun getCaptureSettings() = CaptureSettings().also { it.width = width; it.height = height; it.fps = fps }

    override fun startCapture(): Int {
        val t = Thread {
            var n = 0u
            val period = 1_000_000_000L / fps
            var next = System.nanoTime()
            while (thread === Thread.currentThread()) {
                val f = testPatternFrame(width.toUInt(), height.toUInt(), n++)
                try {
                    if (provideByteArrayFrame(f.data, I420, width, height, 0, false)) provided++
                } catch (e: Throwable) {
                    errors += e
                }
                next += period
                val sleep = (next - System.nanoTime()) / 1_000_000
                if (sleep > 0) Thread.sleep(sleep)
            }
        }
        t.isDaemon = true
        t.name = "pattern-capturer"
        thread = t
        t.start()
        return 0
    }

    override fun stopCapture(): Int {
        val t = thread
        thread = null
        if (t != null && t !== Thread.currentThread()) t.join(2_000)
        return 0
    }

    /** What an app that gets the size wrong would do (for the bad-input test). */
    fun provideWrongSize() = provideByteArrayFrame(ByteArray(64 * 16 * 3 / 2), I420, 64, 16, 0, false)
}

/** Checks every decoded picture against the test pattern. */
class CheckingRenderer : BaseVideoRenderer() {
    val frames = CopyOnWriteArrayList<CheckedFrame>()
    override fun onFrame(frame: Frame) {
        frames += checkPatternFrame(frame.width, frame.height, frame.buffer)
    }
}

/** Estimates the dominant frequency of audio from its zero crossings. */
class AudioCollector : SubscriberKit.AudioDataListener {
    private val samples = CopyOnWriteArrayList<Short>()
    @Volatile var blocks = 0

    override fun onAudioData(subscriber: SubscriberKit, samples: ShortArray) {
        blocks++
        if (this.samples.size < 48_000) this.samples.addAll(samples.toList())
    }

    fun frequency(): Double {
        val s = samples.toList().drop(4_800)
        check(s.size >= 9_600) { "only ${s.size} samples of audio" }
        val crossings = s.zipWithNext().count { (a, b) -> (a < 0) != (b < 0) }
        return crossings / 2.0 / (s.size / 48_000.0)
    }

    fun peak(): Int = samples.maxOfOrNull { abs(it.toInt()) } ?: 0
}

/** One participant: a session with listeners that record everything. */
class Client(val name: String, sessionId: String, secret: String?) : AutoCloseable {
    val session: Session = Session.Builder(Server.apiKey, sessionId).serverUrl(Server.url).build()
    val sessionErrors = CopyOnWriteArrayList<OpentokError>()
    val streams = CopyOnWriteArrayList<Stream>()
    val signals = CopyOnWriteArrayList<String>()
    @Volatile var connected = false
    @Volatile var disconnected = false
    val log = CopyOnWriteArrayList<String>()

    init {
        session.setSessionListener(object : Session.SessionListener {
            override fun onConnected(session: Session) { log += "connected"; connected = true }
            override fun onDisconnected(session: Session) { log += "disconnected"; disconnected = true }
            override fun onStreamReceived(session: Session, stream: Stream) { log += "stream $stream"; streams += stream }
            override fun onStreamDropped(session: Session, stream: Stream) { log += "dropped $stream"; streams -= stream }
            override fun onError(session: Session, error: OpentokError) { log += "error $error"; sessionErrors += error }
        })
        session.setSignalListener(object : Session.SignalListener {
            override fun onSignalReceived(session: Session, type: String, data: String, connection: Connection?) {
                signals += "$type:$data"
            }
        })
        if (secret != null) session.setEncryptionSecret(secret)
    }

    fun connect(sessionId: String): Client {
        session.connect(Server.token(sessionId))
        waitFor(20.0, "$name to connect") { connected || sessionErrors.isNotEmpty() }
        check(connected) { "$name did not connect: $sessionErrors" }
        return this
    }

    fun publish(
        capturer: BaseVideoCapturer?,
        toneHz: Double = 440.0,
        externalAudio: Boolean = false,
        codec: PublisherKit.VideoCodec = PublisherKit.VideoCodec.VP8,
    ): RecordingPublisher {
        val b = Publisher.Builder().name("$name-camera").toneFrequency(toneHz).externalAudio(externalAudio)
            .preferredVideoCodec(codec)
        if (capturer != null) b.capturer(capturer)
        val p = RecordingPublisher(b.build())
        if (externalAudio) audioWriters += ToneWriter(p.publisher, toneHz).also { it.start() }
        session.publish(p.publisher)
        return p
    }

    private val audioWriters = CopyOnWriteArrayList<ToneWriter>()

    fun subscribe(stream: Stream, audio: AudioCollector? = null): RecordingSubscriber {
        val renderer = CheckingRenderer()
        val b = Subscriber.Builder(stream).renderer(renderer)
        if (audio != null) b.audioDataListener(audio)
        val s = RecordingSubscriber(b.build(), renderer)
        session.subscribe(s.subscriber)
        return s
    }

    override fun close() {
        audioWriters.forEach { it.stop() }
        session.release()
    }
}

/** The app's own audio: a sine tone written in 20 ms blocks through `PublisherKit.writeAudio`. */
class ToneWriter(private val publisher: PublisherKit, private val hz: Double) {
    @Volatile private var running = true
    private val thread = Thread {
        var phase = 0.0
        var next = System.nanoTime()
        while (running) {
            val block = ShortArray(960) {
                phase += 2 * Math.PI * hz / 48_000
                (Math.sin(phase) * 8_000).toInt().toShort()
            }
            publisher.writeAudio(block)
            next += 20_000_000L
            val sleep = (next - System.nanoTime()) / 1_000_000
            if (sleep > 0) Thread.sleep(sleep)
        }
    }.apply { isDaemon = true; name = "tone-writer" }

    fun start() = thread.start()

    fun stop() {
        running = false
        thread.join(2_000)
    }
}

class RecordingPublisher(val publisher: PublisherKit) {
    val errors = CopyOnWriteArrayList<OpentokError>()
    @Volatile var stream: Stream? = null

    init {
        publisher.setPublisherListener(object : PublisherKit.PublisherListener {
            override fun onStreamCreated(publisher: PublisherKit, stream: Stream) { this@RecordingPublisher.stream = stream }
            override fun onStreamDestroyed(publisher: PublisherKit, stream: Stream) {}
            override fun onError(publisher: PublisherKit, error: OpentokError) { errors += error }
        })
    }

    fun awaitStream(): Stream {
        waitFor(20.0, "the publisher's stream") { stream != null || errors.isNotEmpty() }
        return stream ?: error("publishing failed: $errors")
    }
}

class RecordingSubscriber(val subscriber: SubscriberKit, val renderer: CheckingRenderer) {
    val errors = CopyOnWriteArrayList<OpentokError>()
    @Volatile var connected = false
    @Volatile var mismatches = 0
    @Volatile var matches = 0

    init {
        subscriber.setSubscriberListener(object : SubscriberKit.SubscriberListener {
            override fun onConnected(subscriber: SubscriberKit) { connected = true }
            override fun onDisconnected(subscriber: SubscriberKit) {}
            override fun onError(subscriber: SubscriberKit, error: OpentokError) { errors += error }
        })
        subscriber.setEncryptionListener(object : SubscriberKit.EncryptionListener {
            override fun onEncryptionSecretMismatch(subscriber: SubscriberKit) { mismatches++ }
            override fun onEncryptionSecretMatch(subscriber: SubscriberKit) { matches++ }
        })
    }
}

/** Reads the pictures of a Y4M file (as `umbra-media subscribe --y4m-out` writes them). */
fun readY4m(file: File): List<Triple<Int, Int, ByteArray>> {
    val bytes = file.readBytes()
    val headerEnd = bytes.indexOf('\n'.code.toByte())
    check(headerEnd > 0 && bytes.decodeToString(0, 9) == "YUV4MPEG2") { "not a Y4M file: $file" }
    val header = bytes.decodeToString(0, headerEnd).split(' ')
    val w = header.first { it.startsWith("W") }.drop(1).toInt()
    val h = header.first { it.startsWith("H") }.drop(1).toInt()
    val size = w * h + 2 * ((w + 1) / 2) * ((h + 1) / 2)
    val out = ArrayList<Triple<Int, Int, ByteArray>>()
    var at = headerEnd + 1
    while (at + 6 <= bytes.size) {
        val nl = (at until bytes.size).first { bytes[it] == '\n'.code.toByte() }
        val start = nl + 1
        if (start + size > bytes.size) break
        out += Triple(w, h, bytes.copyOfRange(start, start + size))
        at = start + size
    }
    return out
}
