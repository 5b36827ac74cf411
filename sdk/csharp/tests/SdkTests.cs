// The C# SDK against a real `laurel serve`: events counted once through a cut connection and
// a killed game, unlocks live and resumed, refused events named, the game-server flavour.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Laurel.Tests
{
    [TestFixture]
    public class SdkTests
    {
        Server server;

        [TestFixtureSetUp]
        public void Start()
        {
            server = new Server();
            server.DefineStat("bananas");
            server.DefineStat("coins");
            for (int n = 1; n <= 4; n++) server.DefineAchievement("COINS_" + n, "coins", n);
        }

        [TestFixtureTearDown]
        public void End() { server.Dispose(); }

        LaurelOptions Options(string url, string token, IQueueStore store = null)
        {
            return new LaurelOptions
            {
                Url = url,
                Token = () => Task.FromResult(token),
                Store = store ?? new MemoryQueueStore(),
                FlushInterval = TimeSpan.Zero,
                MaxBackoff = TimeSpan.FromMilliseconds(500),
            };
        }

        static void Drain(LaurelCore client)
        {
            for (int i = 0; i < 40; i++)
            {
                var result = client.Flush().Result;
                if (result.Pending == 0) return;
                Thread.Sleep(200);
            }
            Assert.Fail("still " + client.Pending + " queued");
        }

        static void Until(string what, Func<bool> check, int ms = 20000)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(ms);
            while (!check())
            {
                if (DateTime.UtcNow > deadline) Assert.Fail("timed out waiting for " + what);
                Thread.Sleep(25);
            }
        }

        [Test]
        public void EventsAreCountedOnceWhenTheConnectionDropsMidBatch()
        {
            using (var proxy = new Proxy(server.Url))
            {
                var errors = new List<LaurelError>();
                var options = Options(proxy.Url, server.Token("--player", "cs-cut"));
                options.BatchSize = 5;
                options.OnError = e => { lock (errors) errors.Add(e); };
                using (var client = new LaurelClient(options))
                {
                    proxy.CutAfterRequest = 2;
                    for (int i = 0; i < 10; i++) client.Report("bananas", 1);
                    Drain(client);
                    Assert.AreEqual(2, proxy.Cut, "two answers lost after the server took the batch");
                    var stats = (Dictionary<string, object>)client.Stats(true).Result["stats"];
                    Assert.AreEqual(10.0, stats["bananas"], "each event once");
                    Until("the errors told", () => { lock (errors) return errors.Any(e => e.Type == "network"); });
                }
            }
        }

        [Test]
        public void EventsQueuedWhenTheGameIsKilledAreSentOnceWhenItRunsAgain()
        {
            var store = Path.Combine(server.Dir, "cs-queue.json");
            var token = server.Token("--player", "cs-kill");
            Func<string, string, Process> run = (mode, url) =>
            {
                var exe = Assembly.GetExecutingAssembly().Location;
                var info = new ProcessStartInfo("mono", "\"" + exe + "\" child " + mode)
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                };
                info.EnvironmentVariables["URL"] = url ?? server.Url;
                info.EnvironmentVariables["TOKEN"] = token;
                info.EnvironmentVariables["STORE"] = store;
                return Process.Start(info);
            };
            var queued = run("queue", null);
            Assert.AreEqual("queued", queued.StandardOutput.ReadLine());
            queued.Kill();
            queued.WaitForExit();
            var again = run("flush", null);
            var said = again.StandardOutput.ReadToEnd();
            again.WaitForExit();
            StringAssert.Contains("sent 5 pending 0", said);
            Assert.AreEqual(5.0, server.StatOf("cs-kill", "bananas"));

            // Killed with its batch sent and the answer not yet back: sent again, counted once.
            using (var proxy = new Proxy(server.Url))
            {
                proxy.Hold = 1;
                var sending = run("send", proxy.Url);
                Assert.AreEqual("queued", sending.StandardOutput.ReadLine());
                Until("the server answered the held batch", () => proxy.Held > 0);
                sending.Kill();
                sending.WaitForExit();
            }
            var last = run("flush", null);
            said = last.StandardOutput.ReadToEnd();
            last.WaitForExit();
            StringAssert.Contains("sent 5 pending 0", said);
            Assert.AreEqual(10.0, server.StatOf("cs-kill", "bananas"), "5 + 5, the resent batch once");
        }

        [Test]
        public void AnUnlockArrivesLiveAndOnceAfterTheStreamIsCut()
        {
            using (var proxy = new Proxy(server.Url))
            {
                var token = server.Token("--player", "cs-live");
                var seen = new List<string>();
                using (var client = new LaurelClient(Options(proxy.Url, token)))
                using (var direct = new LaurelClient(Options(server.Url, token)))
                {
                    var clock = Stopwatch.StartNew();
                    long at = 0;
                    client.OnUnlock += u =>
                    {
                        lock (seen)
                        {
                            if (seen.Count == 0) at = clock.ElapsedMilliseconds;
                            seen.Add((string)((Dictionary<string, object>)u["achievement"])["id"]);
                        }
                    };
                    Thread.Sleep(500);
                    clock.Restart();
                    direct.Report("coins", 1);
                    direct.Flush().Wait();
                    Until("the first unlock", () => { lock (seen) return seen.Count == 1; });
                    Console.WriteLine("unlock seen on OnUnlock " + at + " ms after report");
                    Assert.Less(at, 1000);
                    // The stream is cut; two unlocks happen; it comes back by itself and
                    // resumes after the last unlock it saw.
                    proxy.CutAll();
                    direct.Report("coins", 1);
                    direct.Report("coins", 1);
                    direct.Achievements(true).Wait();
                    Until("the missed unlocks", () => { lock (seen) return seen.Count >= 3; });
                    Thread.Sleep(500);
                    lock (seen)
                        Assert.AreEqual(new[] { "COINS_1", "COINS_2", "COINS_3" }, seen.ToArray(), "each once, in order");
                }
            }
        }

        [Test]
        public void TooManyRequestsAndUnavailableAreWaitedOutAndEachEventCountedOnce()
        {
            using (var limited = new Server("--max-batch", "50", "--player-events-burst", "50", "--player-events-per-minute", "1200"))
            {
                limited.DefineStat("bananas");
                var statuses = new List<int>();
                var proxy = new Proxy(limited.Url);
                proxy.Fail503 = 2;
                var options = Options(proxy.Url, limited.Token("--player", "cs-busy"));
                options.BatchSize = 50;
                options.OnError = e => { lock (statuses) statuses.Add(e.Status); };
                using (var client = new LaurelClient(options))
                {
                    for (int i = 0; i < 150; i++) client.Report("bananas", 1);
                    for (int i = 0; i < 60 && client.Pending > 0; i++)
                    {
                        var result = client.Flush().Result;
                        if (result.Error != null) Thread.Sleep(result.Error.RetryAfter.HasValue ? result.Error.RetryAfter.Value * 1000 : 200);
                    }
                    Assert.AreEqual(0, client.Pending);
                    Until("the 429 and 503 told", () => { lock (statuses) return statuses.Contains(429) && statuses.Contains(503); });
                    proxy.Dispose();
                    Assert.AreEqual(150.0, limited.StatOf("cs-busy", "bananas"));
                }
            }
        }

        [Test]
        public void ATokenRefreshedMidStreamKeepsTheUnlocksComing()
        {
            int minted = 0;
            var options = Options(server.Url, null);
            options.Token = () => { Interlocked.Increment(ref minted); return Task.FromResult(server.Token("--player", "cs-fresh", "--ttl", "2")); };
            var seen = new List<string>();
            using (var client = new LaurelClient(options))
            {
                client.OnUnlock += u => { lock (seen) seen.Add((string)((Dictionary<string, object>)u["achievement"])["id"]); };
                Thread.Sleep(3500);
                Assert.GreaterOrEqual(minted, 2, "the expired stream asked for a fresh token");
                client.Report("coins", 1);
                client.Flush().Wait();
                Until("the unlock on the refreshed stream", () => { lock (seen) return seen.Count == 1; });
                Assert.AreEqual("COINS_1", seen[0]);
            }
        }

        [Test]
        public void ARefusedEventIsNamedAndDroppedAndTheOthersSent()
        {
            var errors = new List<LaurelError>();
            var options = Options(server.Url, server.Token("--player", "cs-typo"));
            options.OnError = e => { lock (errors) errors.Add(e); };
            using (var client = new LaurelClient(options))
            {
                client.Report("bananas", 2);
                client.Report("banana", 1);
                client.Report("bananas", 3);
                Drain(client);
                var stats = (Dictionary<string, object>)client.Stats(true).Result["stats"];
                Assert.AreEqual(5.0, stats["bananas"]);
                Until("the refusal told", () => { lock (errors) return errors.Count == 1; });
                Assert.AreEqual(422, errors[0].Status);
                Assert.AreEqual(1.0, errors[0].Errors[0]["index"]);
                StringAssert.Contains("did you mean `bananas`", (string)errors[0].Errors[0]["reason"]);
            }
            using (var stranger = new LaurelClient(Options(server.Url, "not-a-token")))
            {
                var error = Assert.Throws<AggregateException>(() => stranger.Achievements().Wait()).InnerException as LaurelError;
                Assert.IsNotNull(error);
                Assert.AreEqual(401, error.Status);
            }
        }

        [Test]
        public void AGameServerReportsForPlayersAndGrants()
        {
            using (var game = new LaurelServer(Options(server.Url, server.Token("--server"))))
            using (var admin = new LaurelServer(Options(server.Url, server.Admin)))
            {
                game.Report("cs-ann", "coins", 2);
                game.Report("cs-bob", "coins", 1);
                var ann = (List<object>)game.Achievements("cs-ann", true).Result["achievements"];
                var earned = ann.Cast<Dictionary<string, object>>().Where(a => (bool)a["earned"]).Select(a => (string)a["id"]).ToArray();
                Assert.AreEqual(new[] { "COINS_1", "COINS_2" }, earned);
                var refused = Assert.Throws<AggregateException>(() => game.Grant("cs-bob", "COINS_4").Wait()).InnerException as LaurelError;
                Assert.AreEqual(403, refused.Status);
                admin.Grant("cs-bob", "COINS_4").Wait();
                var bob = (List<object>)admin.Achievements("cs-bob", true).Result["achievements"];
                Assert.IsTrue(bob.Cast<Dictionary<string, object>>().Any(a => (string)a["id"] == "COINS_4" && (bool)a["earned"]));
            }
        }

        [Test]
        public void TheReadmeQuickStartWorksAsPasted()
        {
            server.Call("PUT", "/v1/admin/achievements/EAT_THOUSAND_BANANAS", new Dictionary<string, object> {
                { "title", "Banana lover" },
                { "conditions", new List<object> { new Dictionary<string, object> { { "stat", "bananas" }, { "at_least", 1000 } } } } });
            var readme = File.ReadAllText("README.md");
            var start = readme.IndexOf("```csharp\n", readme.IndexOf("<!-- sdk-test: quick start -->")) + "```csharp\n".Length;
            var block = readme.Substring(start, readme.IndexOf("```", start) - start);
            Assert.LessOrEqual(block.Trim().Split('\n').Length, 10, "ten lines at most");
            var dir = Path.Combine(server.Dir, "quickstart");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "QuickStart.cs"), block.Replace("http://127.0.0.1:8080", server.Url));
            var bin = Path.GetFullPath("bin");
            Func<string, string, Dictionary<string, string>, string> run = (file, args, env) =>
            {
                var info = new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var kv in env) info.EnvironmentVariables[kv.Key] = kv.Value;
                using (var p = Process.Start(info))
                {
                    var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
                    p.WaitForExit();
                    Assert.AreEqual(0, p.ExitCode, output);
                    return output;
                }
            };
            var exe = Path.Combine(dir, "QuickStart.exe");
            run("mcs", "-nologo -r:System.Net.Http.dll -r:" + Path.Combine(bin, "Laurel.dll") + " -out:" + exe + " " + Path.Combine(dir, "QuickStart.cs"), new Dictionary<string, string>());
            var said = run("mono", exe, new Dictionary<string, string> {
                { "PLAYER_TOKEN", server.Token("--player", "cs-quick") }, { "MONO_PATH", bin } });
            StringAssert.Contains("Banana lover: earned", said);
        }

        [Test]
        public void JsonReadsAndWritesWhatTheServerSpeaks()
        {
            var value = Json.Parse("{\"a\":[1,2.5,\"x\\n\\u00e9\",true,null],\"b\":{}}") as Dictionary<string, object>;
            Assert.AreEqual("x\n\u00e9", ((List<object>)value["a"])[2]);
            Assert.AreEqual("{\"a\":[1,2.5,\"x\\n\u00e9\",true,null],\"b\":{}}", Json.Write(value));
            Assert.AreEqual(36, Uuid7.New(1700000000000).Length);
            StringAssert.StartsWith("018bcfe5-6800-7", Uuid7.New(1700000000000));
        }
    }
}
