server {
    listen 80;
    server_name dev.example.com;
    set $code_server_port 8080; # Replace 8080 with your desired port
    include snippets/code-server-proxy.conf;
}
