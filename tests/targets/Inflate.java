/* Inflate: a JVM with the "64 MiB arena problem", for the live-jvm test.
 *
 * Usage: java Inflate [NTHREADS [PER_THREAD]]        (default 8 160)
 *
 * NTHREADS threads each create PER_THREAD java.util.zip.Deflater and Inflater
 * pairs and compress and inflate 64 KiB with each.  zlib's state lives in
 * native memory that the JDK mallocs (about 256 KiB for a Deflater, 40 KiB
 * for an Inflater that has inflated), so each thread fills a glibc arena of
 * its own.  Then every pair but every KEEP_EVERY-th and the last is end()ed:
 * the native memory is freed into glibc's bins, where it stays resident
 * between the kept pairs until malloc_trim gives it back.
 *
 * Then two threads keep the JVM's safepoint machinery busy: one spins on
 * arithmetic in compiled code (so each safepoint stops it through the
 * SIGSEGV of its polling page), one allocates garbage for frequent GCs and
 * calls System.gc() every second.  The main thread prints
 * "READY <pid> <kept pairs>" and answers lines on stdin:
 *
 *   PING   -> "PONG <spin rounds> <gc count>"   (both keep growing)
 *   BURST N -> "BURST OK <kept>": N more Deflater/Inflater pairs on this
 *             thread, every 16th and the last kept, the others ended
 *   CHECK  -> "CHECK OK <pairs>" when every kept pair still compresses and
 *             inflates the data back exactly, else "CHECK FAIL <why>"
 *
 * At the end of stdin it keeps running until killed.
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

public class Inflate {
    static final int KEEP_EVERY = 16;
    static final int DATA = 64 << 10;
    static final List<Deflater> keptD = new ArrayList<>();
    static final List<Inflater> keptI = new ArrayList<>();
    static final AtomicLong spins = new AtomicLong();
    static volatile long sink;
    static byte[] plain;

    /* Text-like data from a small vocabulary: deflate finds matches and
     * uses its whole window, hash chains and output buffer. */
    static byte[] data(int n, long seed) {
        String[] words = { "heap ", "arena ", "chunk ", "malloc ", "trim ", "zlib ", "inflate ",
                           "deflate ", "safepoint ", "thread ", "\n" };
        Random r = new Random(seed);
        byte[] b = new byte[n];
        int i = 0;
        while (i < n) {
            byte[] w = (r.nextInt(8) == 0 ? Long.toHexString(r.nextLong()) + " "
                                          : words[r.nextInt(words.length)]).getBytes();
            for (int k = 0; k < w.length && i < n; k++)
                b[i++] = w[k];
        }
        return b;
    }

    /* Compress plain with d and inflate it back with f; true if exact. */
    static boolean roundTrip(Deflater d, Inflater f, byte[] out, byte[] back) throws DataFormatException {
        d.setInput(plain);
        d.finish();
        int n = 0;
        while (!d.finished() && n < out.length)
            n += d.deflate(out, n, out.length - n);
        if (!d.finished())
            return false;
        f.setInput(out, 0, n);
        int m = 0;
        while (!f.finished() && m < back.length)
            m += f.inflate(back, m, back.length - m);
        return f.finished() && m == plain.length && Arrays.equals(back, plain);
    }

    static void work(int per) {
        List<Deflater> ds = new ArrayList<>();
        List<Inflater> is = new ArrayList<>();
        byte[] out = new byte[DATA + 4096], back = new byte[DATA];
        try {
            for (int i = 0; i < per; i++) {
                Deflater d = new Deflater();
                Inflater f = new Inflater();
                if (!roundTrip(d, f, out, back))
                    throw new IllegalStateException("round trip " + i + " failed");
                ds.add(d);
                is.add(f);
            }
        } catch (DataFormatException e) {
            throw new IllegalStateException(e);
        }
        for (int i = 0; i < per; i++) {
            if (i % KEEP_EVERY == KEEP_EVERY - 1 || i == per - 1) {
                synchronized (keptD) {
                    keptD.add(ds.get(i));
                    keptI.add(is.get(i));
                }
            } else {
                ds.get(i).end();        /* native memory freed now */
                is.get(i).end();
            }
        }
    }

    static long gcCount() {
        long n = 0;
        for (GarbageCollectorMXBean b : ManagementFactory.getGarbageCollectorMXBeans())
            n += Math.max(0, b.getCollectionCount());
        return n;
    }

    static String check() {
        byte[] out = new byte[DATA + 4096], back = new byte[DATA];
        synchronized (keptD) {
            try {
                for (int i = 0; i < keptD.size(); i++) {
                    Deflater d = keptD.get(i);
                    Inflater f = keptI.get(i);
                    d.reset();
                    f.reset();
                    if (!roundTrip(d, f, out, back))
                        return "CHECK FAIL pair " + i + " does not round-trip";
                }
            } catch (DataFormatException e) {
                return "CHECK FAIL " + e;
            }
            return "CHECK OK " + keptD.size();
        }
    }

    public static void main(String[] args) throws Exception {
        int nthreads = args.length > 0 ? Integer.parseInt(args[0]) : 8;
        int per = args.length > 1 ? Integer.parseInt(args[1]) : 160;
        plain = data(DATA, 42);
        Thread[] w = new Thread[nthreads];
        Throwable[] failed = new Throwable[1];
        for (int i = 0; i < nthreads; i++) {
            w[i] = new Thread(() -> work(per), "inflate-" + i);
            w[i].setUncaughtExceptionHandler((t, e) -> failed[0] = e);
            w[i].start();
        }
        for (Thread t : w)
            t.join();
        if (failed[0] != null) {
            failed[0].printStackTrace();
            System.exit(1);
        }

        Thread busy = new Thread(() -> {
            long x = 1;
            for (;;) {
                for (int k = 0; k < 10_000_000; k++)
                    x = x * 6364136223846793005L + 1442695040888963407L;
                sink = x;
                spins.incrementAndGet();
            }
        }, "busy");
        Thread churn = new Thread(() -> {
            List<byte[]> hold = new ArrayList<>();
            long last = System.nanoTime();
            try {
                for (long n = 1;; n++) {
                    hold.add(new byte[64 << 10]);
                    if (hold.size() >= 64)
                        hold.clear();
                    if (n % 4 == 0)
                        Thread.sleep(1);
                    if (System.nanoTime() - last > 1_000_000_000L) {
                        System.gc();
                        last = System.nanoTime();
                    }
                }
            } catch (InterruptedException e) {
                /* not interrupted */
            }
        }, "gc-churn");
        busy.setDaemon(true);
        churn.setDaemon(true);
        busy.start();
        churn.start();

        System.out.println("READY " + ProcessHandle.current().pid() + " " + keptD.size());
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null;) {
            if (line.equals("PING"))
                System.out.println("PONG " + spins.get() + " " + gcCount());
            else if (line.equals("CHECK"))
                System.out.println(check());
            else if (line.startsWith("BURST ")) {
                /* more Inflater work, on this thread: every 16th pair and
                 * the last are kept (their zlib state stays allocated) */
                int before = keptD.size();
                work(Integer.parseInt(line.substring(6).trim()));
                System.out.println("BURST OK " + (keptD.size() - before));
            }
            else
                System.out.println("? " + line);
            System.out.flush();
        }
        for (;;)
            Thread.sleep(60_000);
    }
}
