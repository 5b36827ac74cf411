// What the C# SDK's tests run against: a real `laurel serve` (LAUREL_BIN) on a free port, and
// a TCP proxy in front of it that cuts connections when told (the network's faults).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Laurel.Tests
{
    public sealed class Server : IDisposable
    {
        public readonly string Url;
        public readonly string Dir;
        public readonly string Admin;
        readonly Process process;
        static readonly HttpClient Http = new HttpClient();

        public static string Bin
        {
            get { return Environment.GetEnvironmentVariable("LAUREL_BIN") ?? "../../target/debug/laurel"; }
        }

        public static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public Server(params string[] args)
        {
            Dir = Path.Combine(Path.GetTempPath(), "laurel-cs-" + Guid.NewGuid().ToString("N"));
            int port = FreePort();
            Url = "http://127.0.0.1:" + port;
            var info = new ProcessStartInfo(Bin, "serve --listen 127.0.0.1:" + port + " --data-dir " + Path.Combine(Dir, "data") + " " + string.Join(" ", args))
            {
                UseShellExecute = false,
                RedirectStandardError = true,
            };
            process = Process.Start(info);
            process.ErrorDataReceived += (s, e) => { };
            process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            for (;;)
            {
                try
                {
                    if (Http.GetAsync(Url + "/readyz").Result.IsSuccessStatusCode) break;
                }
                catch (Exception) { }
                if (DateTime.UtcNow > deadline) throw new Exception("laurel did not start");
                Thread.Sleep(50);
            }
            Admin = Token("--admin");
        }

        public string Token(params string[] who)
        {
            var info = new ProcessStartInfo(Bin, "token --data-dir " + Path.Combine(Dir, "data") + " " + string.Join(" ", who))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
            };
            using (var p = Process.Start(info))
            {
                var token = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit();
                return token;
            }
        }

        public Dictionary<string, object> Call(string method, string path, object body)
        {
            var request = new HttpRequestMessage(new HttpMethod(method), Url + path);
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + Admin);
            if (body != null) request.Content = new StringContent(Json.Write(body), Encoding.UTF8, "application/json");
            var response = Http.SendAsync(request).Result;
            var text = response.Content.ReadAsStringAsync().Result;
            if (!response.IsSuccessStatusCode) throw new Exception(method + " " + path + ": " + (int)response.StatusCode + " " + text);
            return Json.Parse(text) as Dictionary<string, object>;
        }

        public void DefineStat(string name)
        {
            Call("PUT", "/v1/admin/stats/" + name, new Dictionary<string, object> {
                { "aggregation", "sum" }, { "kind", "int" }, { "client_writable", true } });
        }

        public void DefineAchievement(string id, string stat, int atLeast)
        {
            Call("PUT", "/v1/admin/achievements/" + id, new Dictionary<string, object> {
                { "title", id },
                { "conditions", new List<object> { new Dictionary<string, object> { { "stat", stat }, { "at_least", atLeast } } } } });
        }

        /// <summary>A player's stat once the views reflect everything on the log (readyz lag 0).</summary>
        public double StatOf(string player, string stat)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (Convert.ToDouble(Call("GET", "/readyz", null)["lag"]) > 0)
            {
                if (DateTime.UtcNow > deadline) throw new Exception("the views did not catch up");
                Thread.Sleep(25);
            }
            var stats = (Dictionary<string, object>)Call("GET", "/v1/players/" + player + "/stats", null)["stats"];
            object value;
            return stats.TryGetValue(stat, out value) ? Convert.ToDouble(value) : 0;
        }

        public void Dispose()
        {
            try { process.Kill(); process.WaitForExit(); } catch (Exception) { }
            try { Directory.Delete(Dir, true); } catch (Exception) { }
        }
    }

    /// <summary>A TCP proxy; for the next CutAfterRequest connections, the answer is lost as it starts.</summary>
    public sealed class Proxy : IDisposable
    {
        public readonly string Url;
        public int CutAfterRequest;
        public int Cut;
        /// <summary>For the next N connections, the server's answer is held back (never sent on).</summary>
        public int Hold;
        public int Held;
        /// <summary>For the next N connections, the proxy answers 503 with Retry-After: 1 itself.</summary>
        public int Fail503;
        public int Answered503;
        readonly TcpListener listener;
        readonly int target;
        readonly List<TcpClient> open = new List<TcpClient>();
        readonly List<Task> pumps = new List<Task>();

        public Proxy(string targetUrl)
        {
            target = new Uri(targetUrl).Port;
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            Url = "http://127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port;
            Task.Run(Accept);
        }

        async Task Accept()
        {
            for (;;)
            {
                TcpClient client;
                try { client = await listener.AcceptTcpClientAsync(); }
                catch (Exception) { return; }
                if (Interlocked.Decrement(ref Fail503) >= 0)
                {
                    Interlocked.Increment(ref Answered503);
                    lock (open) pumps.Add(Answer503(client));
                    continue;
                }
                bool cut = Interlocked.Decrement(ref CutAfterRequest) >= 0;
                bool hold = !cut && Interlocked.Decrement(ref Hold) >= 0;
                var upstream = new TcpClient();
                await upstream.ConnectAsync(IPAddress.Loopback, target);
                lock (open) { open.Add(client); open.Add(upstream); }
                lock (open) pumps.Add(Task.WhenAll(
                    Pump(client.GetStream(), upstream.GetStream(), false, client, upstream),
                    Pump(upstream.GetStream(), client.GetStream(), cut, client, upstream, hold)));
            }
        }

        async Task Answer503(TcpClient client)
        {
            var stream = client.GetStream();
            await stream.ReadAsync(new byte[16384], 0, 16384);
            var body = "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503}";
            var reply = Encoding.ASCII.GetBytes("HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/problem+json\r\ncontent-length: "
                + body.Length + "\r\nconnection: close\r\n\r\n" + body);
            await stream.WriteAsync(reply, 0, reply.Length);
            client.Close();
        }

        async Task Pump(Stream from, Stream to, bool cut, TcpClient a, TcpClient b, bool hold = false)
        {
            var buffer = new byte[16384];
            try
            {
                for (;;)
                {
                    int n = await from.ReadAsync(buffer, 0, buffer.Length);
                    if (n == 0) break;
                    if (cut)
                    {
                        Interlocked.Increment(ref Cut);
                        break;
                    }
                    if (hold)
                    {
                        Interlocked.Increment(ref Held);
                        continue;
                    }
                    await to.WriteAsync(buffer, 0, n);
                }
            }
            catch (Exception) { }
            a.Close();
            b.Close();
        }

        /// <summary>Cuts every open connection; new ones still go through.</summary>
        public void CutAll()
        {
            lock (open) { foreach (var c in open) c.Close(); open.Clear(); }
        }

        public void Dispose()
        {
            listener.Stop();
            lock (open) foreach (var c in open) c.Close();
        }
    }
}
