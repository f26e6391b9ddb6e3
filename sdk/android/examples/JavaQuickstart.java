// The Kotlin SDK from Java: a publisher with the built-in test pattern and a subscriber for every
// other stream, end-to-end encrypted. Compiled by sdk/android/run-tests.sh against the library, so
// the API stays usable from Java. Run: java -cp ... JavaQuickstart URL API_KEY SESSION_ID TOKEN SECRET
import io.umbra.android.BaseVideoRenderer;
import io.umbra.android.OpentokError;
import io.umbra.android.Publisher;
import io.umbra.android.PublisherKit;
import io.umbra.android.Session;
import io.umbra.android.Stream;
import io.umbra.android.Subscriber;
import io.umbra.android.SubscriberKit;

public final class JavaQuickstart {
    private JavaQuickstart() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 5) {
            System.err.println("usage: JavaQuickstart URL API_KEY SESSION_ID TOKEN SECRET");
            System.exit(2);
        }
        final Session session = new Session.Builder(args[1], args[2]).serverUrl(args[0]).build();
        session.setSessionListener(new Session.SessionListener() {
            @Override public void onConnected(Session s) {
                Publisher publisher = new Publisher.Builder().name("java").build();
                publisher.setPublisherListener(new PublisherKit.PublisherListener() {
                    @Override public void onStreamCreated(PublisherKit p, Stream stream) { System.out.println("publishing " + stream.getStreamId()); }
                    @Override public void onStreamDestroyed(PublisherKit p, Stream stream) {}
                    @Override public void onError(PublisherKit p, OpentokError e) { System.out.println("publisher: " + e); }
                });
                s.publish(publisher);
            }
            @Override public void onDisconnected(Session s) { System.out.println("disconnected"); }
            @Override public void onStreamReceived(Session s, Stream stream) {
                Subscriber subscriber = new Subscriber.Builder(stream).renderer(new BaseVideoRenderer() {
                    @Override public void onFrame(BaseVideoRenderer.Frame frame) {
                        System.out.println("frame " + frame.getWidth() + "x" + frame.getHeight());
                    }
                }).build();
                subscriber.setSubscriberListener(new SubscriberKit.SubscriberListener() {
                    @Override public void onConnected(SubscriberKit sub) {}
                    @Override public void onDisconnected(SubscriberKit sub) {}
                    @Override public void onError(SubscriberKit sub, OpentokError e) {
                        if (e.getErrorCode() == OpentokError.ErrorCode.EncryptionSecretMismatch) {
                            System.out.println("this participant uses another secret");
                        }
                    }
                });
                s.subscribe(subscriber);
            }
            @Override public void onStreamDropped(Session s, Stream stream) {}
            @Override public void onError(Session s, OpentokError e) { System.out.println("session: " + e); }
        });
        session.setEncryptionSecret(args[4]);
        session.connect(args[3]);
        Thread.sleep(10_000);
        session.disconnect();
        session.release();
    }
}
