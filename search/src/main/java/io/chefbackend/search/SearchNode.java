package io.chefbackend.search;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node of a chef-backend cluster, embedded: the server jar plus the plugins Chef
 * frontends need (Netty4 for HTTP and transport, Reindex for _delete_by_query), without the
 * distribution's bin/ wrapper. Usage: SearchNode CONFIG_DIR, where CONFIG_DIR holds the
 * opensearch.yml and log4j2.properties that chef-backend renders. Runs until SIGTERM.
 */
public final class SearchNode extends Node {

    private SearchNode(Environment environment) {
        super(environment, List.of(Netty4Plugin.class, ReindexPlugin.class), true);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: SearchNode CONFIG_DIR");
            System.exit(2);
        }
        Path config = Path.of(args[0]).toAbsolutePath();
        Settings settings = Settings.builder().loadFromPath(config.resolve("opensearch.yml")).build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Map.of(), config, () -> settings.get("node.name"));
        // The Environment expects the distribution's layout; this node has no modules or plugins on disk.
        Files.createDirectories(environment.modulesFile());
        Files.createDirectories(environment.pluginsFile());
        LogConfigurator.registerErrorListener();
        LogConfigurator.configure(environment);

        SearchNode node = new SearchNode(environment);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "shutdown"));
        node.start();
        closed.await();
    }
}
