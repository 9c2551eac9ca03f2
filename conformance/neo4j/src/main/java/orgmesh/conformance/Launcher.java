package orgmesh.conformance;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Starts an in-process Neo4j for the org-mesh store suite and prints
 * {@code bolt://127.0.0.1:PORT} once it accepts connections.
 *
 * <p>Usage: {@code Launcher [--port N] [--dir PATH] [--watch-stdin]}. Port 0
 * (the default) lets the kernel pick a free one. Without {@code --dir} the
 * data lives in a temporary folder removed at exit. With
 * {@code --watch-stdin} the server also stops when standard input closes, so
 * a parent that dies cannot leave it behind; it is off by default because a
 * background job often has no standard input at all.
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        Path workDir = options.dir != null ? options.dir : Files.createTempDirectory("org-mesh-neo4j");
        Files.createDirectories(workDir);

        Neo4j neo4j = Neo4jBuilders.newInProcessBuilder(workDir)
                .withDisabledServer()
                .withConfig(HttpConnector.enabled, false)
                .withConfig(HttpsConnector.enabled, false)
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", options.port))
                .withConfig(GraphDatabaseSettings.auth_enabled, false)
                // Nothing started for a test may talk to anything but 127.0.0.1.
                .withConfig(GraphDatabaseSettings.udc_enabled, false)
                // As production servers should be: a client that vanishes
                // mid-transaction, unseen by TCP, must not hold its locks
                // for ever.
                .withConfig(GraphDatabaseSettings.transaction_timeout, java.time.Duration.ofSeconds(30))
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            neo4j.close();
            if (options.dir == null) {
                deleteQuietly(workDir);
            }
            stopped.countDown();
        }, "neo4j-shutdown"));

        URI bolt = neo4j.boltURI();
        System.out.println("bolt://127.0.0.1:" + bolt.getPort());
        System.out.flush();

        if (options.watchStdin) {
            drain(System.in);
            // Exiting runs the shutdown hook, which closes the database.
            System.exit(0);
        }
        stopped.await();
    }

    /** Reads until end of input: the parent closed our stdin or died. */
    private static void drain(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // Input carries no commands; only its end matters.
            }
        } catch (IOException e) {
            // A broken pipe means the same as end of input.
        }
    }

    private static void deleteQuietly(Path root) {
        try (var paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            System.err.println("could not remove " + root + ": " + e.getMessage());
        }
    }

    private record Options(int port, Path dir, boolean watchStdin) {
        static Options parse(String[] args) {
            int port = 0;
            Path dir = null;
            boolean watchStdin = false;
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--port" -> port = Integer.parseInt(value(args, ++i));
                    case "--dir" -> dir = Path.of(value(args, ++i));
                    case "--watch-stdin" -> watchStdin = true;
                    default -> throw new IllegalArgumentException("unknown argument " + args[i]);
                }
            }
            return new Options(port, dir, watchStdin);
        }

        private static String value(String[] args, int i) {
            if (i >= args.length) {
                throw new IllegalArgumentException(args[i - 1] + " needs a value");
            }
            return args[i];
        }
    }
}
