error_page 401 = @error401;
location @error401 {
  rewrite ^.*$ https://example.com/signin?next=https://freqtrade.example.com$request_uri redirect;
}

auth_request /auth;
location = /auth {
  internal;
  proxy_pass https://api.example.com-upstream;
}
