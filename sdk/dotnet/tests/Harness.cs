// A small test runner for the .NET SDK (no test framework needed): named tests, each bounded in
// time, a closing "N passed, M failed" line and a non-zero exit status on failure. Plus the
// helpers the scenarios share: waiting, a single-thread SynchronizationContext, the server.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;

namespace Umbra.Tests
{
    internal sealed class TestFailure : Exception
    {
        public TestFailure(string message) : base(message) { }
    }

    internal static class Check
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new TestFailure(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new TestFailure(what + ": expected " + expected + ", got " + actual);
        }

        public static E Throws<E>(Action a, string what) where E : Exception
        {
            try
            {
                a();
            }
            catch (E e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new TestFailure(what + ": expected " + typeof(E).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new TestFailure(what + ": expected " + typeof(E).Name + ", nothing was thrown");
        }

        public static void OpenTokError(ErrorCode expected, Action a, string what)
        {
            var e = Throws<OpenTokException>(a, what);
            Equal(expected, e.ErrorCode, what);
        }
    }

    internal static class Wait
    {
        /// <summary>Polls until the condition holds or the time is up; returns the condition.</summary>
        public static bool Until(Func<bool> condition, double seconds)
        {
            var sw = Stopwatch.StartNew();
            while (!condition())
            {
                if (sw.Elapsed.TotalSeconds >= seconds) return condition();
                Thread.Sleep(10);
            }
            return true;
        }

        public static void For(Func<bool> condition, double seconds, string what)
        {
            For(condition, seconds, () => what);
        }

        /// <summary>As above; `what` is evaluated on timeout, so it can describe the state then.</summary>
        public static void For(Func<bool> condition, double seconds, Func<string> what)
        {
            if (!Until(condition, seconds)) throw new TestFailure("timed out after " + seconds + " s waiting for " + what());
        }
    }

    /// <summary>A SynchronizationContext that runs posted work, in order, on one thread of its own (like a UI thread).</summary>
    internal sealed class PumpContext : SynchronizationContext, IDisposable
    {
        private readonly BlockingCollection<KeyValuePair<SendOrPostCallback, object>> queue = new BlockingCollection<KeyValuePair<SendOrPostCallback, object>>();
        private readonly Thread thread;
        public int Posted;
        public readonly List<Exception> Errors = new List<Exception>();

        public PumpContext()
        {
            thread = new Thread(Run) { IsBackground = true, Name = "test-pump" };
            thread.Start();
        }

        public int ThreadId
        {
            get { return thread.ManagedThreadId; }
        }

        private void Run()
        {
            SetSynchronizationContext(this);
            foreach (var item in queue.GetConsumingEnumerable())
            {
                try
                {
                    item.Key(item.Value);
                }
                catch (Exception e)
                {
                    lock (Errors) Errors.Add(e);
                }
            }
        }

        public override void Post(SendOrPostCallback d, object state)
        {
            Interlocked.Increment(ref Posted);
            queue.Add(new KeyValuePair<SendOrPostCallback, object>(d, state));
        }

        public override void Send(SendOrPostCallback d, object state)
        {
            throw new InvalidOperationException("the SDK must not Send (it could deadlock a UI thread)");
        }

        /// <summary>Waits until everything posted so far has run.</summary>
        public void Drain()
        {
            var done = new ManualResetEventSlim();
            queue.Add(new KeyValuePair<SendOrPostCallback, object>(_ => done.Set(), null));
            if (!done.Wait(10000)) throw new TestFailure("the pump did not drain in 10 s");
        }

        public void Dispose()
        {
            queue.CompleteAdding();
            thread.Join(5000);
        }
    }

    /// <summary>The `umbra serve` under test and the app-server side: sessions (REST) and tokens (CLI).</summary>
    internal sealed class Server
    {
        public readonly string Url, ApiKey, ApiSecret, UmbraBin, DataDir;

        public Server()
        {
            Url = Env("UMBRA_TEST_URL");
            ApiKey = Env("UMBRA_TEST_API_KEY");
            ApiSecret = Env("UMBRA_TEST_API_SECRET");
            UmbraBin = Env("UMBRA_TEST_BIN");
            DataDir = Env("UMBRA_TEST_DATA_DIR");
        }

        public static string Env(string name)
        {
            var v = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(v)) throw new TestFailure("environment variable " + name + " is not set (run sdk/dotnet/run-tests.sh)");
            return v;
        }

        private static string B64(byte[] b)
        {
            return Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        }

        private string ProjectJwt()
        {
            long now = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1)).TotalSeconds;
            string head = B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));
            string body = B64(Encoding.UTF8.GetBytes("{\"iss\":\"" + ApiKey + "\",\"ist\":\"project\",\"iat\":" + now + ",\"exp\":" + (now + 180) + ",\"jti\":\"dotnet-" + Guid.NewGuid().ToString("N") + "\"}"));
            using (var h = new HMACSHA256(Encoding.UTF8.GetBytes(ApiSecret)))
            {
                return head + "." + body + "." + B64(h.ComputeHash(Encoding.UTF8.GetBytes(head + "." + body)));
            }
        }

        /// <summary>A routed, end-to-end encrypted session, made as an app server would (POST /session/create).</summary>
        public string CreateE2eeSession()
        {
            var req = (HttpWebRequest)WebRequest.Create(Url + "/session/create");
            req.Method = "POST";
            req.Timeout = 10000;
            req.ReadWriteTimeout = 10000;
            req.Proxy = null;
            req.ContentType = "application/x-www-form-urlencoded";
            req.Accept = "application/json";
            req.Headers["X-OPENTOK-AUTH"] = ProjectJwt();
            byte[] body = Encoding.ASCII.GetBytes("p2p.preference=disabled&e2ee=true");
            using (var s = req.GetRequestStream()) s.Write(body, 0, body.Length);
            using (var resp = (HttpWebResponse)req.GetResponse())
            using (var r = new StreamReader(resp.GetResponseStream()))
            {
                string json = r.ReadToEnd();
                var m = Regex.Match(json, "\"session_id\"\\s*:\\s*\"([^\"]+)\"");
                if (!m.Success) throw new TestFailure("no session_id in " + json);
                return m.Groups[1].Value;
            }
        }

        /// <summary>POSTs to the REST API as the app server (project JWT); returns the body.</summary>
        public string Post(string path, string json)
        {
            var req = (HttpWebRequest)WebRequest.Create(Url + path);
            req.Method = "POST";
            req.Timeout = 10000;
            req.ReadWriteTimeout = 10000;
            req.Proxy = null;
            req.ContentType = "application/json";
            req.Accept = "application/json";
            req.Headers["X-OPENTOK-AUTH"] = ProjectJwt();
            byte[] body = Encoding.UTF8.GetBytes(json);
            using (var s = req.GetRequestStream()) s.Write(body, 0, body.Length);
            using (var resp = (HttpWebResponse)req.GetResponse())
            using (var r = new StreamReader(resp.GetResponseStream()))
                return r.ReadToEnd();
        }

        /// <summary>A client token from the `umbra token` CLI.</summary>
        public string Token(string sessionId)
        {
            var r = Proc.Run(UmbraBin, new[] { "--data-dir", DataDir, "token", "--project", ApiKey, "--session-id", sessionId }, 30);
            if (r.ExitCode != 0) throw new TestFailure("umbra token failed: " + r.Output);
            return r.Stdout.Trim();
        }
    }

    internal sealed class ProcResult
    {
        public int ExitCode;
        public string Stdout = "", Output = "";
    }

    internal static class Proc
    {
        private static string Quote(string a)
        {
            return "'" + a.Replace("'", "'\\''") + "'";
        }

        /// <summary>Starts a program (its stdout and stderr collected); use Finish to wait for it.</summary>
        public static Process Start(string file, string[] args, StringBuilder output)
        {
            var psi = new ProcessStartInfo(file)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                Arguments = string.Join(" ", Array.ConvertAll(args, Quote)),
            };
            var p = new Process { StartInfo = psi };
            p.OutputDataReceived += (s, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
            p.ErrorDataReceived += (s, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
            p.Start();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return p;
        }

        /// <summary>Waits at most `seconds` (then kills it: exit code -1).</summary>
        public static int Finish(Process p, double seconds)
        {
            if (!p.WaitForExit((int)(seconds * 1000)))
            {
                try { p.Kill(); } catch { }
                p.WaitForExit(5000);
                return -1;
            }
            p.WaitForExit(); // flushes the asynchronous readers
            return p.ExitCode;
        }

        public static ProcResult Run(string file, string[] args, double seconds)
        {
            var psi = new ProcessStartInfo(file)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                Arguments = string.Join(" ", Array.ConvertAll(args, Quote)),
            };
            using (var p = Process.Start(psi))
            {
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                int rc = Finish(p, seconds);
                return new ProcResult { ExitCode = rc, Stdout = stdout.Result, Output = stdout.Result + stderr.Result };
            }
        }
    }

    internal static class Runner
    {
        private static int passed, failed;
        private static readonly List<string> Failures = new List<string>();

        public static void Test(string name, double limitSeconds, Action body)
        {
            Console.WriteLine("--- " + name);
            var sw = Stopwatch.StartNew();
            Exception error = null;
            var t = new Thread(() =>
            {
                try { body(); }
                catch (Exception e) { error = e; }
            }) { IsBackground = true, Name = "test: " + name };
            t.Start();
            if (!t.Join(TimeSpan.FromSeconds(limitSeconds)))
                error = new TestFailure("did not finish within " + limitSeconds + " s");
            if (error == null)
            {
                passed++;
                Console.WriteLine("PASS " + name + " (" + sw.Elapsed.TotalSeconds.ToString("0.0") + " s)");
            }
            else
            {
                failed++;
                Failures.Add(name);
                Console.WriteLine("FAIL " + name + " (" + sw.Elapsed.TotalSeconds.ToString("0.0") + " s): " +
                    (error is TestFailure ? error.Message : error.ToString()));
            }
        }

        public static int Finish()
        {
            foreach (var f in Failures) Console.WriteLine("failed: " + f);
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }
    }
}
