// A Unity component on Laurel's C# SDK (sdk/csharp): reports stats, shows unlocks as they
// happen, and keeps unsent events in Application.persistentDataPath so play offline or
// before a crash is sent later, each event once. Drop sdk/csharp/src/*.cs (or Laurel.dll)
// into Assets/, add this component to a GameObject, set the URL, and give it the player's
// token from your login (TokenFromYourBackend below).
using System.IO;
using System.Threading.Tasks;
using Laurel;
using UnityEngine;

public class LaurelAchievements : MonoBehaviour
{
    public string laurelUrl = "https://laurel.example.com";
    LaurelClient laurel;

    void Awake()
    {
        // Made on the main thread: OnUnlock and OnError run there too.
        laurel = new LaurelClient(new LaurelOptions
        {
            Url = laurelUrl,
            Token = TokenFromYourBackend,
            Store = new FileQueueStore(Path.Combine(Application.persistentDataPath, "laurel-queue.json")),
            OnError = e => Debug.LogWarning($"Laurel: {e.Title} {e.Detail}"),
        });
        laurel.OnUnlock += unlock =>
        {
            var achievement = (System.Collections.Generic.Dictionary<string, object>)unlock["achievement"];
            Debug.Log($"Unlocked: {achievement["title"]}");   // show your toast here
        };
    }

    /// <summary>Call from gameplay: never blocks, never throws.</summary>
    public void EnemyDefeated() => laurel.Report("enemies_defeated", 1);

    async void OnApplicationPause(bool paused)
    {
        if (paused) await laurel.Flush();   // send what is queued before the OS suspends us
    }

    void OnDestroy() => laurel.Dispose();

    Task<string> TokenFromYourBackend()
    {
        // Your login's player token (a Cognito ID or access token, or your backend's JWT);
        // asked again when the server refuses it or a live stream's token expires.
        return Task.FromResult(PlayerPrefs.GetString("laurel-token"));
    }
}
