error_page 401 = @error401;
location @error401 {
  rewrite ^.*$ https://example.com/signin?next=https://api.example.com$request_uri redirect;
}
