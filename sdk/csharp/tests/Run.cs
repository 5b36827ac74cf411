// A small runner for the NUnit tests (Debian ships NUnit 2.6's framework without a console
// runner in the same package): runs each [Test] of each [TestFixture] between its fixture's
// set-up and tear-down, prints one line per test, exits 1 when any failed. `child MODE` is
// the game process of the kill test.
using System;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Laurel.Tests
{
    public static class Run
    {
        public static int Main(string[] args)
        {
            if (args.Length == 2 && args[0] == "child") return Child(args[1]);
            int failed = 0, passed = 0;
            var filter = args.Length > 0 ? args[0] : null;
            foreach (var type in Assembly.GetExecutingAssembly().GetTypes().Where(t => t.GetCustomAttributes(typeof(TestFixtureAttribute), false).Length > 0))
            {
                var fixture = Activator.CreateInstance(type);
                Func<Type, MethodInfo[]> marked = a => type.GetMethods().Where(m => m.GetCustomAttributes(a, false).Length > 0).ToArray();
                foreach (var m in marked(typeof(TestFixtureSetUpAttribute))) m.Invoke(fixture, null);
                try
                {
                    foreach (var test in marked(typeof(TestAttribute)))
                    {
                        if (filter != null && !test.Name.Contains(filter)) continue;
                        var clock = System.Diagnostics.Stopwatch.StartNew();
                        try
                        {
                            test.Invoke(fixture, null);
                            passed++;
                            Console.WriteLine("ok " + test.Name + " (" + clock.ElapsedMilliseconds + " ms)");
                        }
                        catch (TargetInvocationException e)
                        {
                            failed++;
                            Console.WriteLine("FAILED " + test.Name + ": " + e.InnerException);
                        }
                    }
                }
                finally
                {
                    foreach (var m in marked(typeof(TestFixtureTearDownAttribute))) m.Invoke(fixture, null);
                }
            }
            Console.WriteLine("passed " + passed + ", failed " + failed);
            return failed == 0 && passed > 0 ? 0 : 1;
        }

        static int Child(string mode)
        {
            var client = new LaurelClient(new LaurelOptions
            {
                Url = Environment.GetEnvironmentVariable("URL"),
                Token = () => Task.FromResult(Environment.GetEnvironmentVariable("TOKEN")),
                Store = new FileQueueStore(Environment.GetEnvironmentVariable("STORE")),
                FlushInterval = TimeSpan.Zero,
            });
            if (mode == "queue" || mode == "send")
            {
                for (int i = 0; i < 5; i++) client.Report("bananas", 1);
                // Saved on each report: killed after this line.
                Console.WriteLine("queued");
                Console.Out.Flush();
                if (mode == "send") client.Flush();
                System.Threading.Thread.Sleep(Timeout());
                return 0;
            }
            var result = client.Flush().Result;
            Console.WriteLine("sent " + result.Sent + " pending " + result.Pending);
            return 0;
        }

        static int Timeout() { return 60000; }
    }
}
