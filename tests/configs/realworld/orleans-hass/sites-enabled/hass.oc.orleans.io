upstream hass_websocket {
  #server home-assistant:8123;
  server host.docker.internal:8123;
}

map $http_upgrade $connection_upgrade {
  default upgrade;
  ''      close;
}

server {
  server_name hass.oc.orleans.io;

  listen [::]:4443 ssl;
  listen 4443 ssl http2;

  include snippets/ssl-settings.conf;

  proxy_buffering off;

  location / {
    proxy_pass http://host.docker.internal:8123;
    # proxy_pass http://home-assistant:8123;
    proxy_set_header Host $host;
    # proxy_redirect http:// https://;
    proxy_http_version 1.1;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
  }

  include snippets/certbot-well-known.conf;
}
