package redisconf_test

import (
	"crypto/tls"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/redisconf"
)

// populate sets every field of the struct *v to a distinct non-zero value.
func populate(t *testing.T, v any) []string {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	var names []string
	for i := 0; i < rv.NumField(); i++ {
		f, sf := rv.Field(i), rv.Type().Field(i)
		names = append(names, sf.Name)
		switch f.Interface().(type) {
		case string:
			f.SetString("v-" + sf.Name)
		case int:
			f.SetInt(int64(i + 2))
		case time.Duration:
			f.SetInt(int64(time.Duration(i+2) * time.Second))
		case []string:
			f.Set(reflect.ValueOf([]string{"h1:1", "h2:2"}))
		case *tls.Config:
			f.Set(reflect.ValueOf(&tls.Config{ServerName: "cioq"}))
		default:
			t.Fatalf("%T.%s: a field of a kind this test does not know (%s): ClientWithBufferSize may miss it", v, sf.Name, sf.Type)
		}
	}
	slices.Sort(names)
	return names
}

// comparable zeroes what the two clients' options may differ in: the
// buffer sizes (the point) and function fields (not comparable).
func comparable(v any) any {
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		name := rv.Type().Field(i).Name
		if f.Kind() == reflect.Func || name == "ReadBufferSize" || name == "WriteBufferSize" {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return rv.Interface()
}

// TestClientWithBufferSize checks that the client made with small buffers
// has the options asynq's MakeRedisClient gives, but for its buffer sizes,
// for every field of asynq's three connection options (a field asynq adds
// fails the field lists below).
func TestClientWithBufferSize(t *testing.T) {
	single := asynq.RedisClientOpt{}
	failover := asynq.RedisFailoverClientOpt{}
	cluster := asynq.RedisClusterClientOpt{}
	for _, c := range []struct {
		opt    asynq.RedisConnOpt
		ptr    any
		fields []string
	}{
		{&single, &single, []string{"Addr", "DB", "DialTimeout", "Network", "Password", "PoolSize", "ReadTimeout", "TLSConfig", "Username", "WriteTimeout"}},
		{&failover, &failover, []string{"DB", "DialTimeout", "MasterName", "Password", "PoolSize", "ReadTimeout", "SentinelAddrs", "SentinelPassword", "SentinelUsername", "TLSConfig", "Username", "WriteTimeout"}},
		{&cluster, &cluster, []string{"Addrs", "DialTimeout", "MaxRedirects", "Password", "ReadTimeout", "TLSConfig", "Username", "WriteTimeout"}},
	} {
		if got := populate(t, c.ptr); !slices.Equal(got, c.fields) {
			t.Fatalf("%T has the fields %v, ClientWithBufferSize copies %v", c.ptr, got, c.fields)
		}
		val := reflect.ValueOf(c.ptr).Elem().Interface().(asynq.RedisConnOpt)
		mine, err := redisconf.ClientWithBufferSize(val, 4096)
		if err != nil {
			t.Fatal(err)
		}
		theirs := val.MakeRedisClient().(redis.UniversalClient)
		var o, a any // the two clients' options
		switch m := mine.(type) {
		case *redis.Client:
			o, a = m.Options(), theirs.(*redis.Client).Options()
		case *redis.ClusterClient:
			o, a = m.Options(), theirs.(*redis.ClusterClient).Options()
		default:
			t.Fatalf("%T: client %T", val, mine)
		}
		ov := reflect.ValueOf(o).Elem()
		if rb, wb := ov.FieldByName("ReadBufferSize").Int(), ov.FieldByName("WriteBufferSize").Int(); rb != 4096 || wb != 4096 {
			t.Errorf("%T: buffers %d / %d, want 4096", val, rb, wb)
		}
		if mo, ao := comparable(o), comparable(a); !reflect.DeepEqual(mo, ao) {
			t.Errorf("%T: options\n%+v\nasynq's\n%+v", val, mo, ao)
		}
		mine.Close()
		theirs.Close()
	}
}
